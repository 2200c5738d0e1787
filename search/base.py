"""The searcher interface: points in, scores in, nothing else.

A searcher proposes points of a `Space` (`ask`), learns their scores (`tell`) and can be rebuilt
from a stored history (`restore`). There is no Trial object: a study stores (point, result)
pairs, and that is all a searcher needs to resume.

>>> from archc import loads
>>> from archc.search import RandomSearch
>>> space = loads("space s {\\n input x: float[4]\\n linear(choice(8, 16))\\n}")
>>> searcher = RandomSearch(space, seed=0)
>>> point = searcher.ask()
>>> searcher.tell(point, 0.5)
>>> dict(point) in ({'linear.out': 8}, {'linear.out': 16})
True
"""

from __future__ import annotations

import math
import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping

from archc.dsl.domain import Scalar
from archc.dsl.point import Point
from archc.dsl.space import Space

__all__ = ["BaseSearcher", "Result", "score_of", "WORST"]

Result = float | None
"""A score to maximise; None or NaN marks a failed trial."""

WORST = -math.inf
"""The score a failed trial counts as: below every real score."""


def score_of(result: object) -> float:
    """The result as a float to maximise: failures (None, NaN) become `WORST`."""
    if result is None:
        return WORST
    value = float(result)  # type: ignore[arg-type]
    return WORST if math.isnan(value) else value


class BaseSearcher(ABC):
    """Ask for points, tell their scores, restore from a history.

    Contract (every searcher; tests/search/test_conformance.py checks it):

    * `ask() -> Point`: a valid point of the space (`space.validate` accepts it). Asks may
      repeat a point when the space is small; a searcher never gets stuck.
    * `tell(point, result)`: `result` is a score to MAXIMISE, or None / NaN for a failed trial,
      which counts as the worst score. Any valid point may be told, not only asked ones; an
      invalid one raises `PointError`. Asks and tells may interleave freely (batches).
    * `restore(history)`: forget everything and rebuild from (point, result) pairs in the order
      they were told.
    * Seeding: `seed` fixes everything. The searcher owns one `random.Random`, re-seeded at each
      ask from (class, seed, number of asks so far); the global RNG is never used.

    Hence the restore guarantee: the k-th ask is a function of (space, seed, k, the tells made
    before it). `restore(h)` replays the tells of `h` and sets the ask count to `len(h)`, so a
    searcher restored from the history of one that had no ask outstanding asks exactly what
    that one would have asked next, whichever searcher produced `h`.
    """

    def __init__(self, space: Space, *, seed: int = 0) -> None:
        self.space = space
        self.seed = seed
        self.rng = random.Random(seed)
        self.asked = 0
        self.history: list[tuple[Point, float]] = []
        self.seen: set[Point] = set()  # the points of `history`
        self._reset()

    def ask(self) -> Point:
        """A point to evaluate next (valid in the space)."""
        self.rng.seed(f"{type(self).__name__}:{self.seed}:{self.asked}")
        self.asked += 1
        return self._propose()

    def tell(self, point: Mapping[str, Scalar], result: Result) -> None:
        """Record `point`'s score (None / NaN: failed, counted as worst)."""
        valid = self.space.validate(point)
        score = score_of(result)
        self.history.append((valid, score))
        self.seen.add(valid)
        self._observe(valid, score)

    def restore(self, history: Iterable[tuple[Mapping[str, Scalar], Result]]) -> None:
        """Rebuild the state from (point, result) pairs, as if they had been asked and told."""
        self.history, self.seen = [], set()
        self._reset()
        for point, result in history:
            self.tell(point, result)
        self.asked = len(self.history)

    @property
    def best(self) -> tuple[Point, float] | None:
        """The best (point, score) told so far (None before any tell)."""
        return max(self.history, key=lambda item: item[1], default=None)

    def _unseen(self, point: Point, again: Callable[[Point], Point], tries: int) -> Point:
        """`point` if it was never told, else the first untold of up to `tries` redraws
        `again(previous)`; the last redraw when every one was told (tiny spaces repeat). A
        told point would teach the searcher nothing."""
        for _ in range(tries):
            if point not in self.seen:
                break
            point = again(point)
        return point

    # ── what each searcher supplies ─────────────────────────────────────────────────────────

    @abstractmethod
    def _reset(self) -> None:
        """Set the state a searcher has before any tell."""

    @abstractmethod
    def _propose(self) -> Point:
        """The next point, drawing randomness from `self.rng` only."""

    @abstractmethod
    def _observe(self, point: Point, score: float) -> None:
        """Update the state with a told (validated point, score); failures are `WORST`."""
