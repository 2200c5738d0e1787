"""The search loop end to end on digits: trials trained and stored in SQLite, a refused point
recorded with its reason, resuming, reuse of an identical network, and `archc search`."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

import archc
from archc.search.runner import run_search

from .spaces import tiny_digits

SPEC = tiny_digits(lrs="choice(0.003, 0.01)", extra="    require params < 3000\n")


@pytest.fixture(autouse=True)
def quiet() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_search_stores_every_trial_and_resumes(tmp_path: Path) -> None:
    space = archc.loads(SPEC)
    storage = f"sqlite:///{tmp_path / 'archc.db'}"
    seen = []
    study = run_search(space, spec_text=SPEC, trials=6, task="digits", storage=storage,
                       seed=0, threads=1, on_trial=seen.append)
    assert len(study.trials) == 6 == len(seen)
    loaded = optuna.load_study(study_name="tiny", storage=storage)
    states = {t.user_attrs["status"] for t in loaded.trials}
    assert states <= {"complete", "fail"}
    for trial in loaded.trials:
        attrs = trial.user_attrs
        assert attrs["point"] and attrs["seed"] is not None and attrs["spec_hash"]
        if attrs["status"] == "fail":  # only the params require refuses points here
            assert "require params < 3000" in attrs["reason"]
        else:
            assert 0.0 <= trial.value <= 1.0 and attrs["param_count"] < 3000
            assert attrs["metrics_per_epoch"] and ":" in attrs["structural_hash"]
            assert set(trial.params) == set(attrs["point"])  # decisions are optuna params
    resumed = run_search(space, spec_text=SPEC, trials=9, task="digits", storage=storage,
                         seed=0, on_trial=seen.append)
    assert len(resumed.trials) == 9 and len(seen) == 9


def test_the_same_network_and_settings_are_trained_once(tmp_path: Path) -> None:
    space = archc.loads(SPEC)
    outcomes = []
    study = run_search(space, trials=12, task="digits", threads=1,
                       storage=f"sqlite:///{tmp_path / 'a.db'}", on_trial=outcomes.append)
    reused = [o for o in outcomes if o.reused]
    assert reused, "12 trials over 8 points must repeat one"
    assert all(o.score is not None for o in reused)
    for outcome in reused:  # it keeps the seed that trained the network it reuses
        attrs = study.trials[outcome.number].user_attrs
        original = int(attrs["reason"].split()[2].rstrip(":"))
        assert attrs["seed"] == study.trials[original].user_attrs["seed"] == original


def test_archc_search_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from archc.cli import app

    spec = tmp_path / "tiny.arch"
    spec.write_text(SPEC)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["search", str(spec), "--trials", "3", "--task", "digits"])
    assert result.exit_code == 0, result.output
    assert "trial   2" in result.stdout and "study tiny" in result.stdout
    assert (tmp_path / "archc.db").is_file()  # the default storage, here
    bad = CliRunner().invoke(app, ["search", str(spec), "--searcher", "genetic"])
    assert bad.exit_code == 1 and "unknown searcher 'genetic'" in bad.stderr


def test_search_from_python_returns_the_study(tmp_path: Path) -> None:
    spec = tmp_path / "tiny.arch"
    spec.write_text(SPEC)
    study = archc.search(spec, trials=2, task="digits", storage=f"sqlite:///{tmp_path / 'p.db'}")
    assert isinstance(study, optuna.Study) and len(study.trials) == 2
    assert study.study_name == "tiny"
