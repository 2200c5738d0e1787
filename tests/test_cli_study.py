"""`archc search` killed and resumed, Ctrl-C, and `archc show / evaluate / export` on a stored
study: output, files, exit codes, and no traceback for any option error."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from typer.testing import CliRunner

import archc
from archc.cli import app
from archc.search.runner import run_search
from tests.search.spaces import tiny_digits

TrialState = optuna.trial.TrialState
SPEC = tiny_digits()


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A finished two-objective search of 5 trials in a SQLite file: its URL."""
    folder = tmp_path_factory.mktemp("study")
    url = f"sqlite:///{folder / 'archc.db'}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    run_search(archc.loads(SPEC), spec_text=SPEC, spec_name="tiny.arch", trials=5,
               storage=url, threads=1, objective="maximize(val_accuracy), minimize(params)")
    return url


def cli(*args: str) -> object:
    return CliRunner().invoke(app, list(args))


def test_show_prints_the_leaderboard_front_and_writes_plots(stored: str,
                                                            tmp_path: Path) -> None:
    result = cli("show", "tiny", "--storage", stored, "--plots", str(tmp_path / "plots"))
    assert result.exit_code == 0, result.output
    assert "study tiny: 5 trials" in result.stdout and "val_accuracy ↑" in result.stdout
    assert "params ↓" in result.stdout and "Pareto front:" in result.stdout
    for name in ("history.png", "pareto.png"):
        assert (tmp_path / "plots" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_reports_test_mean_and_sd(stored: str) -> None:
    result = cli("evaluate", "tiny", "--storage", stored, "--top", "1", "--seeds", "2")
    assert result.exit_code == 0, result.output
    assert "test_accuracy" in result.stdout and " ± " in result.stdout
    study = optuna.load_study(study_name="tiny", storage=stored)
    (kept,) = study.user_attrs["evaluation"].values()
    mean, sd = kept["test_accuracy"]
    assert 0.0 <= mean <= 1.0 and sd >= 0.0 and kept["seeds"] == 2


def test_export_retrains_the_trial_to_its_stored_score(stored: str, tmp_path: Path) -> None:
    study = optuna.load_study(study_name="tiny", storage=stored)
    best = max((t for t in study.trials if t.state == TrialState.COMPLETE),
               key=lambda t: (t.values[0], -t.values[1], -t.number))
    result = cli("export", "tiny", "--storage", stored, "-o", str(tmp_path / "model"))
    assert result.exit_code == 0, result.output
    assert f"trial {best.number}:" in result.stdout
    # same seed, same settings: the retrained network scores exactly what the search stored
    shown = float(result.stdout.split("val_accuracy ")[1].split()[0])
    assert shown == pytest.approx(best.values[0], abs=5e-5)
    assert {p.name for p in (tmp_path / "model").iterdir()} >= {
        "model.py", "weights.safetensors", "point.json"}


@pytest.mark.parametrize(("args", "code", "expected"), [
    (["show", "nope"], 1, "no study 'nope' in"),
    (["show", "tiny", "--storage", "nosuchdb://x"], 1, "--storage: cannot open"),
    (["show", "tiny", "--storage", "sqlite:///missing/archc.db"], 1,
     "--storage: no database file"),
    (["export", "tiny", "--trial", "99", "-o", "out"], 1, "--trial 99: out of range"),
    (["export", "tiny", "--trial", "first", "-o", "out"], 1, "--trial takes 'best'"),
    (["export", "tiny", "-o", "out", "--format", "onnx"], 1, "--format must be one of"),
    (["evaluate", "tiny", "--seeds", "0"], 2, "--seeds"),
    (["evaluate", "tiny", "--data", "digits.csv"], 1, "reads no data path"),
    (["search", "tiny.arch", "--pruner", "fast"], 1, "--pruner: unknown pruner 'fast'"),
])
def test_option_errors_name_the_flag(stored: str, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch, args: list[str],
                                     code: int, expected: str) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny.arch").write_text(SPEC)
    if "--storage" not in args and args[0] != "search":
        args = [*args, "--storage", stored]
    result = cli(*args)
    assert result.exit_code == code, result.output
    assert expected in result.output and "Traceback" not in result.output


# Every point distinct (a continuous learning rate), so no trial is an instant reuse: the
# search is nearly always inside a trial when it is stopped.
DISTINCT = SPEC.replace("lr = choice(0.003, 0.03)", "lr = float(0.003..0.03, log)")


def search_process(folder: Path, trials: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "archc.cli", "search", "tiny.arch", "--trials", str(trials),
         "--epochs", "3", "--threads", "1"],
        cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_a_running_trial(url: str, process: subprocess.Popen[str], trials: int) -> None:
    """Until the study holds a complete trial and a running one that is not among the last two.

    A signal sent while the last trial runs can arrive after the search ended normally (exit 0),
    so the stop is only sent with more trials still to come.
    """
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        try:
            states = [t.state for t in optuna.load_study(study_name="tiny",
                                                         storage=url).trials]
        except KeyError:  # the study is not created yet
            states = []
        if (TrialState.COMPLETE in states and states[-1] == TrialState.RUNNING
                and len(states) <= trials - 2):
            return
        time.sleep(0.05)
    raise AssertionError("the search never had a running trial after a complete one "
                         "with more trials still to come")


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_a_stopped_search_loses_nothing_and_resumes(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    stop: signal.Signals) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny.arch").write_text(DISTINCT)
    url = f"sqlite:///{tmp_path / 'archc.db'}"
    trials = 12
    process = search_process(tmp_path, trials)
    wait_for_a_running_trial(url, process, trials)
    process.send_signal(stop)
    out, _ = process.communicate(timeout=60)
    before = optuna.load_study(study_name="tiny", storage=url).trials
    if stop == signal.SIGINT:  # Ctrl-C: a clean stop with the leaderboard
        assert process.returncode == 130 and "interrupted" in out and "study tiny" in out
        assert all(t.state != TrialState.RUNNING for t in before)
    rerun = cli("search", "tiny.arch", "--trials", str(len(before) + 2), "--epochs", "1",
                "--threads", "1")  # the same command, in this process
    assert rerun.exit_code == 0, rerun.output
    after = optuna.load_study(study_name="tiny", storage=url).trials
    assert [t.number for t in after] == list(range(len(before) + 2))  # numbering goes on
    for old, new in zip(before, after, strict=False):
        if old.state == TrialState.COMPLETE:  # every completed trial is still there
            assert new.state == TrialState.COMPLETE and new.values == old.values
        else:  # the one cut short is failed, as interrupted
            assert new.state == TrialState.FAIL
            if old.state == TrialState.RUNNING or stop == signal.SIGINT:
                assert new.user_attrs["reason"] == "interrupted"
    # A signal can land in the moment between two trials (one told, the next not yet asked):
    # then no trial was running and none is left to mark. Cut short, a trial is left RUNNING by
    # a kill and marked FAIL by Ctrl-C before the process ends (none is RUNNING then, above)
    if any(t.state == TrialState.RUNNING or (stop == signal.SIGINT and t.state == TrialState.FAIL)
           for t in before):
        assert any(t.user_attrs.get("reason") == "interrupted" for t in after)


def test_resuming_with_an_edited_spec_says_so(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'archc.db'}"
    spec = tmp_path / "tiny.arch"
    spec.write_text(SPEC)
    first = cli("search", str(spec), "--trials", "1", "--storage", url)
    assert first.exit_code == 0 and "differs" not in first.output
    spec.write_text(SPEC.replace("classifier(task.classes)",
                                 "dropout(0.1)\n    classifier(task.classes)"))
    edited = cli("search", str(spec), "--trials", "2", "--storage", url)
    assert edited.exit_code == 0, edited.output
    assert "the spec differs from the one that made the first 1 trials" in edited.output
    again = cli("search", str(spec), "--trials", "3", "--storage", url)
    assert again.exit_code == 0 and "differs" not in again.output
    assert len(optuna.load_study(study_name="tiny", storage=url).trials) == 3


def test_a_decision_whose_domain_changed_is_refused_before_a_trial_opens(
        tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'archc.db'}"
    spec = tmp_path / "tiny.arch"
    spec.write_text(SPEC)
    assert cli("search", str(spec), "--trials", "2", "--storage", url).exit_code == 0
    spec.write_text(SPEC.replace("choice(8, 16)", "choice(8, 12)"))
    edited = cli("search", str(spec), "--trials", "4", "--storage", url)
    assert edited.exit_code == 1 and "Traceback" not in edited.output
    assert "decision 'conv2d.out' of study 'tiny' had the domain choice(8, 16); the spec " \
        "now gives choice(8, 12)" in " ".join(edited.output.split())
    assert "--study NAME" in edited.output
    trials = optuna.load_study(study_name="tiny", storage=url).trials
    assert len(trials) == 2 and all(t.state == TrialState.COMPLETE for t in trials)


def test_a_study_whose_spec_imports_a_file_is_shown_from_anywhere(tmp_path: Path) -> None:
    """The stored spec's imports resolve against the spec's own folder, not the folder
    `archc show / evaluate / export` happen to run in."""
    url = f"sqlite:///{tmp_path / 'archc.db'}"
    (tmp_path / "blocks.arch").write_text("def widen = conv2d(choice(8, 16), k = 3)\n")
    spec = tmp_path / "tiny.arch"
    spec.write_text('import "blocks.arch"\n' + SPEC.replace("conv2d(choice(8, 16), k = 3)",
                                                           "widen"))
    assert cli("search", str(spec), "--trials", "1", "--storage", url).exit_code == 0
    assert Path.cwd() != tmp_path  # the runner's folder: "blocks.arch" is not there
    shown = cli("show", "tiny", "--storage", url)
    assert shown.exit_code == 0, shown.output
    assert "study tiny: 1 trials" in shown.stdout

