"""The SMBO surrogates against closed forms: ridge, GP interpolation and doubt, and EI."""

from __future__ import annotations

import math

import numpy as np
import pytest

from archc.search import SMBO
from archc.search.surrogates import (
    LENGTHS,
    NOISES,
    GaussianProcess,
    Ridge,
    _likelihood,
    _squared_distances,
    expected_improvement,
)

from .spaces import space


def one_hot_rows(rng: np.random.Generator, n: int, decisions: int = 6, values: int = 5
                 ) -> np.ndarray:
    """n points of `decisions` decisions, one-hot, with a few unused columns at the end."""
    x = np.zeros((n, decisions * values + 3))
    picks = rng.integers(0, values, size=(n, decisions))
    for d in range(decisions):
        x[np.arange(n), d * values + picks[:, d]] = 1.0
    return x


def test_ridge_is_the_primal_closed_form() -> None:
    rng = np.random.default_rng(0)
    x, y = one_hot_rows(rng, 40), rng.normal(size=40)
    model = Ridge(alpha=0.5)
    model.fit(x, y)
    used = x[:, x.any(axis=0)]
    w = np.linalg.solve(used.T @ used + 0.5 * np.eye(used.shape[1]), used.T @ (y - y.mean()))
    candidates = one_hot_rows(rng, 10)
    mean, std = model.predict(candidates)
    np.testing.assert_allclose(mean, candidates[:, x.any(axis=0)] @ w + y.mean(), atol=1e-9)
    assert not std.any()


def test_gp_interpolates_and_doubts_what_it_has_not_seen() -> None:
    rng = np.random.default_rng(1)
    x = np.unique(one_hot_rows(rng, 30), axis=0)
    y = rng.normal(size=len(x))
    model = GaussianProcess(setting=(2.0, 1e-8))
    model.fit(x, y)
    mean, std = model.predict(x)
    np.testing.assert_allclose(mean, y, atol=1e-4)
    assert std.max() < 1e-3
    far = np.zeros((1, x.shape[1]))
    far[0, -1] = 30.0  # along a column no told point uses, far from all: the prior
    far_mean, far_std = model.predict(far)
    assert far_mean[0] == pytest.approx(y.mean(), abs=1e-3)
    assert far_std[0] == pytest.approx(y.std(), rel=1e-3)


def test_gp_chooses_the_setting_of_highest_likelihood() -> None:
    rng = np.random.default_rng(2)
    x = one_hot_rows(rng, 25)
    y = x[:, 0] * 2 + x[:, 7] - x[:, 12] + 0.1 * rng.normal(size=25)
    model = GaussianProcess()
    model.fit(x, y)
    z = (y - y.mean()) / y.std()
    sq = np.einsum("ij,ij->i", x, x)
    squared = _squared_distances(x, sq, x, sq)
    scores = {(l2, n): _likelihood(squared, (l2, n), z) for l2 in LENGTHS for n in NOISES}
    assert model.setting == max(scores, key=scores.__getitem__)


def test_expected_improvement_matches_monte_carlo() -> None:
    rng = np.random.default_rng(3)
    mean, std, best = np.array([0.0, 1.0, -1.0, 0.5]), np.array([1.0, 0.5, 2.0, 0.0]), 0.2
    draws = mean + std * rng.standard_normal((400_000, 4))
    estimate = np.maximum(draws - best, 0).mean(axis=0)
    np.testing.assert_allclose(expected_improvement(mean, std, best), estimate, atol=5e-3)
    assert expected_improvement(mean, std, best)[3] == pytest.approx(0.3)  # no doubt: the gain
    assert math.isclose(float(expected_improvement(np.array([0.0]), np.array([0.0]), 1.0)[0]), 0)


def test_an_unknown_surrogate_is_refused() -> None:
    with pytest.raises(ValueError, match="ridge, gp"):
        SMBO(space("tiny"), surrogate="forest")
