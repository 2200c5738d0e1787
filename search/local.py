"""Local search: climb one-decision neighbourhoods, restart at a local optimum.

Source: White, Nolen, Ravindranath & Zhang, "Local Search is State of the Art for Neural
Architecture Search Benchmarks" (2020); the design of research/searchers.md §1.11 item 3: start
from the best of a few random samples, move to the first improving neighbour, skip points
already seen, restart when the neighbourhood is used up.
"""

from __future__ import annotations

import random

from archc.dsl.point import Point
from archc.dsl.space import Space
from archc.search.base import WORST, BaseSearcher

__all__ = ["LocalSearch"]

FRESH_TRIES = 10
"""Further samples drawn when a random point was already told (tiny spaces repeat)."""


class LocalSearch(BaseSearcher):
    """State, all from tells: the points seen, the current point of the climb and its score,
    and how many tells since the last move failed to improve it.

    * A (re)start evaluates `init` random points; the best becomes the current point.
    * Each ask is an unseen neighbour of the current point (`space.neighbours`), at random.
    * A told point better than the current one becomes current (first improvement).
    * After `patience` tells in a row without improvement the climb is at a local optimum (as far
      as a sampled neighbourhood can tell): restart. When every neighbour is seen, asks are random
      samples, which count towards patience or, if better, move the climb there.
    """

    def __init__(self, space: Space, *, seed: int = 0, init: int = 10,
                 patience: int = 20) -> None:
        self.init = init
        self.patience = patience
        super().__init__(space, seed=seed)

    def _reset(self) -> None:
        self.current: Point | None = None
        self.current_score = WORST
        self.started = 0  # tells since the last (re)start
        self.stale = 0  # tells since the last improvement
        self.around: tuple[Point, list[Point]] | None = None  # the current point's neighbours

    def _propose(self) -> Point:
        if self.current is None or self.started < self.init:
            return self._fresh()
        fresh = [p for p in self._neighbours(self.current) if p not in self.seen]
        return self.rng.choice(fresh) if fresh else self._fresh()

    def _neighbours(self, point: Point) -> list[Point]:
        """`space.neighbours`, computed once per point (seeded by the point, so a function of
        it: the climb asks about one neighbourhood many times, and building it walks the
        space once per neighbour)."""
        if self.around is None or self.around[0] != point:
            rng = random.Random(f"LocalSearch-around:{self.seed}:{point.to_json()}")
            self.around = (point, self.space.neighbours(point, rng))
        return self.around[1]

    def _fresh(self) -> Point:
        """A random point, unseen if a few draws find one (tiny spaces repeat)."""
        return self._unseen(self.space.sample(self.rng), lambda _: self.space.sample(self.rng),
                            FRESH_TRIES)

    def _observe(self, point: Point, score: float) -> None:
        self.started += 1
        if self.current is None or score > self.current_score:
            self.current, self.current_score, self.stale = point, score, 0
            return
        self.stale += 1
        if self.started > self.init and self.stale >= self.patience:
            self.current, self.current_score, self.started, self.stale = None, WORST, 0, 0
