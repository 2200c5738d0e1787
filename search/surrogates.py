"""Surrogate models for SMBO: ridge regression, and a Gaussian process that knows its doubt.

Both fit feature rows (archc.search.smbo.features: one-hot "path=value" columns, plus positions
of numeric decisions) to scores, and predict a mean and a standard deviation for candidates.

* `Ridge` is DeepArchitect's surrogate (research/searchers.md §1.3): a linear model, so an
  additive guess at the worth of each decision value, with no uncertainty (std is zero; SMBO
  then explores by ε-random picks only).
* `GaussianProcess` has a squared-exponential kernel on the feature distance. For one-hot rows
  the squared distance is twice the number of decisions in which two points differ, so the
  kernel exp(-m / l²) is a Hamming-distance kernel: it captures interactions between decisions
  (an edge that matters only when another is not `none`) that a linear model cannot, and its
  posterior std feeds an expected-improvement acquisition. The length scale and noise are chosen
  by marginal likelihood over a small grid (`LENGTHS`, `NOISES`), or given (SMBO re-selects
  them every few tells, not at every ask).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import numpy as np

__all__ = ["Surrogate", "Ridge", "GaussianProcess", "expected_improvement", "SURROGATES"]


class Surrogate(ABC):
    """fit(x, y) on told rows; predict(x) → (mean, std) for candidate rows."""

    @abstractmethod
    def fit(self, x: np.ndarray, y: np.ndarray) -> None:
        """Learn from rows `x` (n, f) and scores `y` (n,), to maximise."""

    @abstractmethod
    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Predicted mean and standard deviation of each row of `x`."""


class Ridge(Surrogate):
    """Weights and intercept minimising |y - x w - b|² + alpha |w|², in the dual form (one
    n × n solve: there are fewer told points than features)."""

    def __init__(self, alpha: float = 1.0) -> None:
        self.alpha = alpha
        self.w, self.b = np.zeros(0), 0.0
        self.columns = np.zeros(0, dtype=int)

    def fit(self, x: np.ndarray, y: np.ndarray) -> None:
        self.b = float(y.mean())
        # a column that is zero in every told row gets weight zero: leave it out of products
        self.columns = np.flatnonzero(x.any(axis=0))
        x = x[:, self.columns]
        gram = x @ x.T + self.alpha * np.eye(len(x))
        self.w = x.T @ np.linalg.solve(gram, y - self.b)

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return x[:, self.columns] @ self.w + self.b, np.zeros(len(x))


LENGTHS = (1.0, 2.0, 4.0, 8.0)
"""Squared length scales l² tried: points differing in m one-hot decisions correlate e^(-m/l²)."""
NOISES = (1e-3, 1e-2, 1e-1)
"""Noise variances tried, relative to the variance of the scores (which are standardised)."""

Setting = tuple[float, float]
"""A GP's (l², noise variance)."""


class GaussianProcess(Surrogate):
    """A zero-mean GP on standardised scores, kernel exp(-|x - x'|² / (2 l²)). `setting` fixes
    (l², noise); without it `fit` picks the pair of `LENGTHS` × `NOISES` of highest marginal
    likelihood (then `setting` holds it, for a caller that re-selects only now and then)."""

    def __init__(self, setting: Setting | None = None) -> None:
        self.setting = setting
        self.mean, self.scale = 0.0, 1.0

    def fit(self, x: np.ndarray, y: np.ndarray) -> None:
        self.mean = float(y.mean())
        self.scale = float(y.std()) or 1.0
        z = (y - self.mean) / self.scale
        # columns that are zero in every told row add only to norms: drop them from products
        self.columns = np.flatnonzero(x.any(axis=0))
        self.x, self.sq = x[:, self.columns], np.einsum("ij,ij->i", x, x)
        squared = _squared_distances(self.x, self.sq, self.x, self.sq)
        if self.setting is None:
            self.setting = max(((length, noise) for length in LENGTHS for noise in NOISES),
                               key=lambda s: _likelihood(squared, s, z))
        length, noise = self.setting
        self.inverse = np.linalg.inv(np.exp(-squared / (2 * length)) + noise * np.eye(len(z)))
        self.alpha = self.inverse @ z

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        assert self.setting is not None, "predict before fit"
        sq = np.einsum("ij,ij->i", x, x)
        squared = _squared_distances(x[:, self.columns], sq, self.x, self.sq)
        cross = np.exp(-squared / (2 * self.setting[0]))
        var = np.maximum(1.0 - np.einsum("ij,ij->i", cross @ self.inverse, cross), 1e-12)
        return self.mean + self.scale * (cross @ self.alpha), self.scale * np.sqrt(var)


def _squared_distances(a: np.ndarray, a_sq: np.ndarray, b: np.ndarray, b_sq: np.ndarray
                       ) -> np.ndarray:
    return np.maximum(a_sq[:, None] + b_sq[None, :] - 2 * (a @ b.T), 0.0)


def _likelihood(squared: np.ndarray, setting: Setting, z: np.ndarray) -> float:
    """Log marginal likelihood of scores `z` under a kernel setting (up to a constant)."""
    length, noise = setting
    try:
        chol = np.linalg.cholesky(np.exp(-squared / (2 * length)) + noise * np.eye(len(z)))
    except np.linalg.LinAlgError:  # not positive definite: this setting cannot be chosen
        return -math.inf
    w = np.linalg.solve(chol, z)
    return -0.5 * float(w @ w) - float(np.log(np.diag(chol)).sum())


_ERF = np.vectorize(math.erf, otypes=[float])


def expected_improvement(mean: np.ndarray, std: np.ndarray, best: float,
                         xi: float = 0.0) -> np.ndarray:
    """E[max(f - best - xi, 0)] under N(mean, std²); the mean's excess where std is zero."""
    gain = mean - best - xi
    safe = np.maximum(std, 1e-12)
    z = gain / safe
    cdf = 0.5 * (1 + _ERF(z / math.sqrt(2)))
    pdf = np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    return np.where(std > 1e-12, gain * cdf + safe * pdf, np.maximum(gain, 0.0))


SURROGATES = {"ridge": Ridge, "gp": GaussianProcess}
"""Surrogate name (as `SMBO(space, surrogate=…)` takes it) → class."""
