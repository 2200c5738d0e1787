"""The optuna seam: define-by-run points, TPE / NSGA-II searchers and their restore guarantee
(search/_optuna.py): a restored TPE asks what one told the same history live asks next."""

from __future__ import annotations

import math

import optuna
import pytest

from archc.search._optuna import NSGAII, TPE, suggest_point

from .spaces import space

optuna.logging.set_verbosity(optuna.logging.WARNING)


def drive(searcher: TPE, steps: int) -> list:
    """Ask and tell `steps` times, every fifth a failure (None or NaN)."""
    asked = []
    for step in range(steps):
        point = searcher.ask()
        asked.append(point)
        failed = step % 5 == 4
        searcher.tell(point, (None if step % 2 else math.nan) if failed
                      else float(len(repr(point)) % 7 + step % 3))
    return asked


@pytest.mark.parametrize("name", ["flat", "deep"])
def test_tpe_proposals_validate_on_conditional_spaces(name: str) -> None:
    s = space(name)
    searcher = TPE(s, seed=0)
    for point in drive(searcher, 25):
        assert s.validate(point) == point
    assert len(searcher.study.trials) == 25


def test_params_are_decision_paths_and_only_active_ones() -> None:
    s = space("deep")
    study = optuna.create_study()
    for _ in range(10):
        trial = study.ask()
        point = suggest_point(s, trial)
        assert trial.params == dict(point)
    assert any("mhc.iters" in p for t in study.trials for p in t.params)
    assert all(not ("hc.dynamic" in t.params and "mhc.iters" in t.params) for t in study.trials)


def test_same_seed_same_sequence_and_seeds_differ() -> None:
    s = space("deep")
    assert drive(TPE(s, seed=3), 15) == drive(TPE(s, seed=3), 15)
    assert drive(TPE(s, seed=3), 15) != drive(TPE(s, seed=4), 15)


def test_failures_are_fail_trials() -> None:
    searcher = TPE(space("flat"), seed=0)
    drive(searcher, 10)
    states = [t.state for t in searcher.study.trials]
    assert states.count(optuna.trial.TrialState.FAIL) == 2
    assert searcher.best is not None and math.isfinite(searcher.best[1])


@pytest.mark.parametrize("name", ["flat", "deep", "tiny"])
def test_restore_asks_what_the_live_searcher_asks(name: str) -> None:
    s = space(name)
    live = TPE(s, seed=7)
    drive(live, 14)  # past TPE's 10 random start-up trials
    restored = TPE(s, seed=7)
    restored.restore(live.history)  # failures stored as -inf restore as failures
    assert [t.state for t in restored.study.trials] == [t.state for t in live.study.trials]
    assert [restored.ask() for _ in range(3)] == [live.ask() for _ in range(3)]


def test_a_point_not_asked_can_be_told() -> None:
    s = space("flat")
    searcher = TPE(s, seed=0)
    searcher.tell(s.sample(seed=1), 1.0)
    assert searcher.study.trials[0].params == dict(s.sample(seed=1))
    assert s.validate(searcher.ask())


def test_nsga2_two_objectives() -> None:
    s = space("deep")
    searcher = NSGAII(s, seed=0)
    for step in range(20):
        point = searcher.ask()
        s.validate(point)
        searcher.tell(point, None if step == 3 else (float(step % 4), -float(len(point))))
    assert len(searcher.study.trials) == 20
    assert searcher.study.best_trials
    with pytest.raises(ValueError, match="2 objective"):
        searcher.tell(searcher.ask(), 1.0)
