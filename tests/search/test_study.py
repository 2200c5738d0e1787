"""Study storage (search/study.py) on a SQLite file: readable by plain optuna, resumable,
failures kept with their reason, results reusable by structural hash."""

from __future__ import annotations

import math
from pathlib import Path

import optuna

from archc.search._optuna import TPE
from archc.search.study import begin_trial, find_by_hash, history, open_study, record_trial

from .spaces import space

optuna.logging.set_verbosity(optuna.logging.WARNING)


def run(url: str, seeds: range, fail: int | None = None) -> optuna.Study:
    """Record one trial per seed (the `fail`-th a shape error), as a search would."""
    s = space("deep")
    study = open_study("s", url)
    for seed in seeds:
        point = s.sample(seed=seed)
        trial = begin_trial(study, s, point)
        failed = seed == fail
        record_trial(study, trial.number if seed % 2 else trial, point=point,
                     structural_hash=f"h{seed % 3}", params=1000 + seed, flops=10**6,
                     metrics_per_epoch=[{"val_acc": 0.5}, {"val_acc": math.nan}],
                     wall_time=1.5, seed=seed, spec_hash="abc",
                     status="fail" if failed else "complete",
                     reason="shape error" if failed else None,
                     value=None if failed else 0.1 * seed)
    return study


def test_plain_optuna_reads_params_and_attrs(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'archc.db'}"
    run(url, range(4))
    study = optuna.load_study(study_name="s", storage=url)
    trial = study.trials[1]
    assert trial.params == trial.user_attrs["point"] == dict(space("deep").sample(seed=1))
    assert "n" not in trial.params and "layers" in trial.params
    assert trial.user_attrs["param_count"] == 1001
    assert trial.user_attrs["metrics_per_epoch"] == [{"val_acc": 0.5}, {"val_acc": None}]
    assert trial.value == 0.1


def test_reopening_resumes_and_failures_keep_their_reason(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'archc.db'}"
    run(url, range(3), fail=1)
    study = run(url, range(3, 6))
    assert [t.number for t in study.trials] == list(range(6))
    failed = study.trials[1]
    assert failed.state == optuna.trial.TrialState.FAIL
    assert failed.user_attrs["reason"] == "shape error"
    assert [result for _, result in history(study)][:2] == [0.0, None]
    assert len(history(study)) == 6


def test_a_complete_trial_without_a_result_is_failed(tmp_path: Path) -> None:
    study = open_study("s", f"sqlite:///{tmp_path / 'a.db'}")
    trial = study.ask()
    record_trial(study, trial, point={}, structural_hash="h", value=math.nan)
    assert study.trials[0].state == optuna.trial.TrialState.FAIL
    assert study.trials[0].user_attrs["reason"] == "no result"


def test_find_by_hash(tmp_path: Path) -> None:
    study = run(f"sqlite:///{tmp_path / 'archc.db'}", range(3), fail=0)
    assert find_by_hash(study, "h1").number == 1
    assert find_by_hash(study, "h0") is None  # only trial with h0 failed
    assert find_by_hash(study, "missing") is None


def test_a_searcher_restores_from_a_stored_study(tmp_path: Path) -> None:
    s = space("deep")
    study = run(f"sqlite:///{tmp_path / 'archc.db'}", range(12), fail=2)
    searcher = TPE(s, seed=0)
    searcher.restore(history(study))
    assert searcher.asked == 12
    assert s.validate(searcher.ask())
