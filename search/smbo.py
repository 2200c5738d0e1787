"""Sequential model-based optimisation: a surrogate ranks candidates, the best one is asked.

Source: DeepArchitect's SMBO searchers (Negrinho & Gordon 2017, legacy `SMBOLinearSearcher`;
current `smbo_random.py` with `HashingSurrogate`), upgraded as research/searchers.md §1.3 and
§1.11 item 5 recommend: stable-hashed features (crc32, not Python's salted `hash`), candidates
from random samples *and* the one-decision neighbours of the best points (the BANANAS lesson),
and a surrogate with uncertainty (archc.search.surrogates: a Gaussian process, ranked by expected
improvement) besides DeepArchitect's ridge (ranked by its mean, exploring by ε-random picks).

Cost: an ask must stay cheap beside a trial even after thousands of tells
(benchmarks/searchers_speed.py). Candidates are cached: random ones come in chunks of `CHUNK`
samples, one new chunk per ask, each seeded by (seed, its ask number) so that an ask remains a
function of (space, seed, k, the tells before it), as `BaseSearcher` promises; neighbourhoods are
computed once per point; feature rows once per point. The model trains on at most `TRAIN` told
points (the best half and the most recent half).
"""

from __future__ import annotations

import bisect
import random
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from archc.dsl.domain import Domain, Scalar
from archc.dsl.point import Point
from archc.dsl.space import Space
from archc.errors import SpaceError
from archc.search.base import WORST, BaseSearcher
from archc.search.encode import position
from archc.search.surrogates import (
    SURROGATES,
    GaussianProcess,
    Ridge,
    Setting,
    Surrogate,
    expected_improvement,
)

__all__ = ["SMBO", "features"]

FEATURES = 512
"""Hash buckets of the feature vector."""
CHUNK = 4
"""Random candidates drawn per ask; an ask ranks the chunks of its last `candidates // CHUNK`."""
TRAIN = 128
"""Most told points the surrogate trains on (the GP's cost grows as the cube of it)."""
RESELECT = 10
"""Tells between two choices of the GP's kernel setting by marginal likelihood."""
REVEAL = 2
"""Neighbours of a best point added to the candidates per tell (see `SMBO._neighbours`)."""

Candidate = tuple[Point, np.ndarray]
"""A candidate point and its feature row."""


@dataclass
class Around:
    """A point's neighbourhood, completed lazily: its edits in a fixed order, how many have
    been tried, the neighbours they gave, and the RNG completing them (so each neighbour is a
    pure function of (seed, point, its position))."""

    values: dict[str, Scalar]
    edits: list[tuple[str, Scalar]]
    rng: random.Random
    next: int = 0
    done: list[Candidate] = field(default_factory=list)


def _bucket(text: str) -> int:
    return zlib.crc32(text.encode()) % FEATURES


def features(point: Point, domains: Mapping[str, Domain]) -> np.ndarray:
    """One-hot "path=value" for every decision, plus the position in its range (in [0, 1]) of
    every float or wide int decision, hashed into `FEATURES` buckets. `domains` maps each
    concrete path of `point` to its domain."""
    x = np.zeros(FEATURES)
    for path, value in point.items():
        domain = domains[path]
        if not domain.discrete or domain.size > 16:
            x[_bucket(f"{path}#")] += position(domain, value)
            x[_bucket(f"{path}~")] += 1.0  # active: lets the model shift the linear term
        else:
            x[_bucket(f"{path}={value!r}")] += 1.0
    return x


class SMBO(BaseSearcher):
    """After `init` random points, each ask fits the surrogate on the told points (failures at
    the worst real score) and proposes the unseen candidate that ranks best: by expected
    improvement for `surrogate="gp"` (the default), by predicted mean for `"ridge"`. With
    probability `epsilon` an ask is a random sample instead. Candidates: the last `candidates`
    random samples (see the module docstring) and the neighbours of the `top` best points.

    On NAS-Bench-201 (benchmarks/results/searchers.md, mean of three datasets) the GP beats
    ridge at 50 and 100 distinct cells under both protocols (oracle regret at 100: 0.15 against
    0.37 points) and ties at 200, hence the default; ridge is ahead at 25 on the oracle and
    costs a little less per ask. The cost constants (`CHUNK`, `REVEAL`, `TRAIN`) were cut as
    far as they went without raising the regret; ε = 0.05 (down from DeepArchitect's 0.1, as
    the GP explores by its own uncertainty) was not tuned separately."""

    def __init__(self, space: Space, *, seed: int = 0, surrogate: str = "gp", init: int = 10,
                 candidates: int = 64, top: int = 3, epsilon: float = 0.05,
                 alpha: float = 1.0) -> None:
        if surrogate not in SURROGATES:
            raise ValueError(f"unknown surrogate '{surrogate}' (use {', '.join(SURROGATES)})")
        self.surrogate = surrogate
        self.init, self.candidates, self.top = init, candidates, top
        self.epsilon, self.alpha = epsilon, alpha
        # caches of pure functions, kept across `restore`: (point, feature row) pairs
        self.chunks: dict[int, list[Candidate]] = {}  # ask number → its random chunk
        self.around: dict[Point, Around] = {}  # point → its neighbourhood so far
        self.rows: dict[Point, np.ndarray] = {}  # told point → feature row
        self.domains: dict[str, Domain] = {}  # concrete path → domain, learnt from walks
        super().__init__(space, seed=seed)

    def _reset(self) -> None:
        self.scores: list[float] = []
        self.ranked: list[tuple[float, int]] = []  # (-score, tell index), best first
        self.settings: dict[int, Setting] = {}  # tells → the GP kernel setting chosen there

    def _row(self, point: Point) -> np.ndarray:
        """The feature row of a told point, cached."""
        row = self.rows.get(point)
        if row is None:
            row = self.rows[point] = self._with_rows([point])[0][1]
        return row

    def _observe(self, point: Point, score: float) -> None:
        bisect.insort(self.ranked, (-score, len(self.scores)))
        self.scores.append(score)

    def _propose(self) -> Point:
        if len(self.scores) < self.init or self.rng.random() < self.epsilon:
            return self.space.sample(self.rng)
        pool = {p: row for p, row in self._candidates() if p not in self.seen}
        if not pool:
            return self.space.sample(self.rng)
        model = self._fit(len(self.scores))
        mean, std = model.predict(np.array(list(pool.values())))
        points = list(pool)
        if self.surrogate == "ridge":
            return points[int(np.argmax(mean))]
        best = self.scores[self.ranked[0][1]]  # the best told score (always trained on)
        gain = expected_improvement(mean, std, best)
        return points[int(np.argmax(gain + 1e-9 * mean))]  # all-zero EI: the best mean

    def _fit(self, n: int) -> Surrogate:
        """The surrogate fitted to the first `n` tells. The GP re-selects its kernel setting
        only every `RESELECT` tells (at n = RESELECT·j, whose setting is cached), which keeps
        an ask a function of the tells while sparing a grid search per ask."""
        train = self._training_set(n)
        x = np.array([self._row(self.history[i][0]) for i in train])
        y = self._targets(train)
        if self.surrogate == "ridge":
            ridge = Ridge(self.alpha)
            ridge.fit(x, y)
            return ridge
        anchor = n - n % RESELECT
        if anchor not in self.settings and anchor < n:
            self._fit(anchor)
        gp = GaussianProcess(self.settings.get(anchor))
        gp.fit(x, y)
        if anchor == n and gp.setting is not None:
            self.settings[anchor] = gp.setting
        return gp

    def _training_set(self, n: int) -> list[int]:
        """Indices of the first `n` told points the model learns from: all, or the
        `TRAIN // 2` best and the most recent ones."""
        if n <= TRAIN:
            return list(range(n))
        chosen = dict.fromkeys(self._best(n, TRAIN // 2))
        for i in range(n - 1, -1, -1):
            if len(chosen) >= TRAIN:
                break
            chosen.setdefault(i)
        return sorted(chosen)

    def _best(self, n: int, k: int) -> list[int]:
        """Indices of the `k` best of the first `n` tells (earlier first among equals)."""
        if n == len(self.scores):
            return [i for _, i in self.ranked[:k]]
        return sorted(range(n), key=lambda i: -self.scores[i])[:k]

    def _candidates(self) -> list[Candidate]:
        out: list[Candidate] = []
        for i in self._best(len(self.scores), self.top):
            out += self._neighbours(i)
        last = self.asked - 1
        for k in range(max(last - self.candidates // CHUNK + 1, 0), last + 1):
            out += self._chunk(k)
        return out

    def _chunk(self, k: int) -> list[Candidate]:
        if k not in self.chunks:
            rng = random.Random(f"SMBO-chunk:{self.seed}:{k}")
            self.chunks[k] = self._with_rows(self.space.sample(rng) for _ in range(CHUNK))
            self.chunks.pop(k - self.candidates // CHUNK, None)  # no longer in any window
        return self.chunks[k]

    def _neighbours(self, index: int) -> list[Candidate]:
        """The first `REVEAL` × (1 + tells since) neighbours of the `index`-th told point, in a
        fixed shuffled order: a point that stays among the best has its whole neighbourhood
        ranked after a few tells, at a bounded cost per ask."""
        point = self.history[index][0]
        around = self.around.get(point)
        if around is None:
            rng = random.Random(f"SMBO-around:{self.seed}:{point.to_json()}")
            trace = self.space.trace(point)
            edits = list(self.space.edits(trace, rng))
            rng.shuffle(edits)
            around = self.around[point] = Around(dict(trace.values), edits, rng)
        want = REVEAL * (len(self.scores) - index)
        while len(around.done) < want and around.next < len(around.edits):
            path, value = around.edits[around.next]
            around.next += 1
            try:
                near = self.space.complete({**around.values, path: value}, around.rng)
            except SpaceError:  # the edit violates a `require`
                continue
            if near != point:
                around.done += self._with_rows([near])
        return around.done[:want]

    def _with_rows(self, points: Iterable[Point]) -> list[Candidate]:
        """Points with their `features`; a point is walked only when it has a path not met
        before (a concrete path always has the same domain, and walks cost the most)."""
        out = []
        for point in points:
            if any(path not in self.domains for path in point):
                self.domains.update((s.path, s.domain) for s in self.space.trace(point).sites)
            out.append((point, features(point, self.domains)))
        return out

    def _targets(self, train: list[int]) -> np.ndarray:
        y = np.array([self.scores[i] for i in train])
        real = y[y > WORST]
        y[y == WORST] = real.min() if real.size else 0.0
        return y
