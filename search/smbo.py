"""Sequential model-based optimisation with a ridge-regression surrogate.

Source: DeepArchitect's SMBO searchers (Negrinho & Gordon 2017, legacy `SMBOLinearSearcher`;
current `smbo_random.py` with `HashingSurrogate`), upgraded as research/searchers.md §1.3 and
§1.11 item 5 recommend: stable-hashed features (crc32, not Python's salted `hash`), candidates
from random samples *and* mutations of the best points (the BANANAS lesson), ε-greedy
exploration since ridge has no uncertainty.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping

import numpy as np

from archc.dsl.domain import Domain
from archc.dsl.point import Point
from archc.dsl.space import Space
from archc.search.base import WORST, BaseSearcher
from archc.search.encode import position

__all__ = ["SMBO", "features", "ridge"]

FEATURES = 512
"""Hash buckets of the feature vector."""


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


def ridge(x: np.ndarray, y: np.ndarray, alpha: float) -> tuple[np.ndarray, float]:
    """Weights and intercept minimising |y - x w - b|² + alpha |w|² (dual form: n ≪ features)."""
    mean = float(y.mean())
    gram = x @ x.T + alpha * np.eye(len(x))
    return x.T @ np.linalg.solve(gram, y - mean), mean


class SMBO(BaseSearcher):
    """After `init` random points, each ask fits ridge on every told point (failures at the
    worst real score), scores `candidates` random samples plus as many mutations of the `top`
    best points, and proposes the best-predicted unseen one; with probability `epsilon` it
    proposes a random sample instead (DeepArchitect's benchmark used ε=0.1)."""

    def __init__(self, space: Space, *, seed: int = 0, init: int = 10, candidates: int = 32,
                 top: int = 5, epsilon: float = 0.1, alpha: float = 1.0) -> None:
        self.init, self.candidates, self.top = init, candidates, top
        self.epsilon, self.alpha = epsilon, alpha
        super().__init__(space, seed=seed)

    def _reset(self) -> None:
        self.rows: list[np.ndarray] = []
        self.scores: list[float] = []
        self.seen: set[Point] = set()
        self.domains: dict[str, Domain] = {}  # concrete path → domain, learnt from walks

    def _features(self, point: Point) -> np.ndarray:
        """`features`, walking the point only when it has a path not met before: a concrete
        path always has the same domain, and walks are the expensive part of an ask."""
        if any(path not in self.domains for path in point):
            self.domains.update((s.path, s.domain) for s in self.space.trace(point).sites)
        return features(point, self.domains)

    def _observe(self, point: Point, score: float) -> None:
        self.rows.append(self._features(point))
        self.scores.append(score)
        self.seen.add(point)

    def _propose(self) -> Point:
        if len(self.scores) < self.init or self.rng.random() < self.epsilon:
            return self.space.sample(self.rng)
        pool = [p for p in dict.fromkeys(self._candidates()) if p not in self.seen]
        if not pool:
            return self.space.sample(self.rng)
        w, b = ridge(np.array(self.rows), self._targets(), self.alpha)
        predicted = np.array([self._features(p) for p in pool]) @ w + b
        return pool[int(np.argmax(predicted))]

    def _candidates(self) -> list[Point]:
        ranked = sorted(range(len(self.scores)), key=lambda i: -self.scores[i])
        best = [self.history[i][0] for i in ranked[:self.top]]
        out = [self.space.sample(self.rng) for _ in range(self.candidates)]
        out += [self.space.mutate(best[i % len(best)], self.rng) for i in range(self.candidates)]
        return out

    def _targets(self) -> np.ndarray:
        y = np.array(self.scores)
        real = y[y > WORST]
        y[y == WORST] = real.min() if real.size else 0.0
        return y
