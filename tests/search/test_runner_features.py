"""The runner's pruners, failures, several objectives, stale-trial recovery, and the plan's
checks — on small digits searches (one epoch or a few per trial)."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import optuna
import pytest

import archc
from archc.errors import ArchError, CheckError
from archc.search.runner import run_search
from archc.search.study import begin_trial, history, mark_interrupted, open_study

from .spaces import tiny_digits

TrialState = optuna.trial.TrialState

TINY = tiny_digits(epochs=3)

# k = 9 with valid padding does not fit 8×8 (a shape error at compile time); SGD with
# lr = 1e8 and no clipping diverges (a NaN loss while training).
FAILING = """\
space failing {
    input image: float[1, 8, 8]
    conv2d(8, k = choice(3, 9), padding = "valid")
    classifier(task.classes)
}
train {
    optimizer = "sgd"
    grad_clip = 0
    lr = choice(0.05, 1e8)
    epochs = 1
}
"""


@pytest.fixture(autouse=True)
def quiet() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'archc.db'}"


def located_error(text: str, tmp_path: Path) -> str:
    """The rendered CheckError a search of spec `text` (named t.arch) stops with."""
    with pytest.raises(CheckError) as caught:
        run_search(archc.loads(text, name="t.arch"), spec_text=text, spec_name="t.arch",
                   storage=url(tmp_path))
    return caught.value.render()


def test_failures_are_recorded_with_reasons_and_the_search_completes(tmp_path: Path) -> None:
    study = run_search(archc.loads(FAILING), trials=8, threads=1, storage=url(tmp_path), seed=1)
    reasons = [t.user_attrs["reason"] or "" for t in study.trials]
    assert len(study.trials) == 8
    assert any("k = 9" in r and "valid padding" in r for r in reasons)  # the shape error
    assert any("nan" in r.lower() for r in reasons)                    # the diverged loss
    for trial in study.trials:
        if trial.state == TrialState.FAIL:
            assert trial.user_attrs["status"] == "fail" and trial.user_attrs["reason"]
    assert any(t.state == TrialState.COMPLETE for t in study.trials)


def test_a_pruner_stops_trials_and_keeps_their_last_metrics(tmp_path: Path) -> None:
    outcomes = []
    study = run_search(archc.loads(TINY), trials=8, threads=1, storage=url(tmp_path),
                       pruner="halving", seed=0, on_trial=outcomes.append)
    pruned = [t for t in study.trials if t.state == TrialState.PRUNED]
    assert pruned, "successive halving prunes at the first rung"
    for trial in pruned:
        epochs = trial.user_attrs["metrics_per_epoch"]
        assert 1 <= len(epochs) <= 3 and trial.user_attrs["status"] == "pruned"
        assert trial.value == pytest.approx(epochs[-1]["val_accuracy"], abs=1e-12)
        assert trial.intermediate_values[len(epochs)] == trial.value
    # searchers are told (and restore) a pruned trial's last value
    told = {o.number: o.score for o in outcomes if o.status == "pruned"}
    assert told == {t.number: t.value for t in pruned}
    restored = dict(enumerate(result for _, result in history(study)))
    assert all(restored[t.number] == t.value for t in pruned)


def test_several_objectives_search_with_nsga2(tmp_path: Path) -> None:
    run_search(archc.loads(TINY), trials=4, threads=1, storage=url(tmp_path), epochs=1,
                       objective="maximize(val_accuracy), minimize(params)")
    loaded = optuna.load_study(study_name="tiny", storage=url(tmp_path))
    assert [d.name for d in loaded.directions] == ["MAXIMIZE", "MINIMIZE"]
    done = [t for t in loaded.trials if t.state == TrialState.COMPLETE]
    assert done and all(t.values[1] == t.user_attrs["param_count"] for t in done)
    assert loaded.best_trials and loaded.user_attrs["objectives"] == [
        "maximize(val_accuracy)", "minimize(params)"]


def test_objective_metrics_are_checked_at_the_spec(tmp_path: Path) -> None:
    text = TINY.replace("epochs = 3\n}", "epochs = 3\n}\nsearch {\n"
                        "    objective = maximize(val_acc), minimize(params)\n}")
    message = located_error(text, tmp_path)
    assert "t.arch:13:26: error: task 'digits' has no metric 'val_acc'" in message
    assert "did you mean 'val_accuracy'" in message
    assert not (tmp_path / "archc.db").exists()  # nothing was started


@pytest.mark.parametrize(("options", "expected"), [
    ({"pruner": "fast"}, "--pruner: unknown pruner 'fast'"),
    ({"searcher": "genetic"}, "unknown searcher 'genetic'"),
    ({"objective": "max(val_accuracy)"}, "--objective takes maximize(metric)"),
    ({"objective": "maximize(val_accuracy), minimize(params)", "searcher": "random"},
     "searcher 'random' optimises one objective"),
    ({"objective": "maximize(val_accuracy), minimize(params)", "pruner": "median"},
     "--pruner: a pruner needs a single objective"),
    ({"objective": "minimize(params)", "pruner": "median"}, "not reported per epoch"),
    ({"storage": "nosuchdb://x"}, "--storage: cannot open 'nosuchdb://x'"),
])
def test_plan_errors_name_the_option(tmp_path: Path, options: dict, expected: str) -> None:
    options.setdefault("storage", url(tmp_path))
    with pytest.raises(ArchError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        run_search(archc.loads(TINY), trials=1, **options)


def test_stale_running_trials_are_marked_interrupted(tmp_path: Path) -> None:
    space = archc.loads(TINY)
    study = open_study("tiny", url(tmp_path))
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = begin_trial(study, space, space.sample(seed=0))
    stale.set_user_attr("worker", f"{socket.gethostname()}:{dead.pid}")
    live = begin_trial(study, space, space.sample(seed=1))
    live.set_user_attr("worker", f"{socket.gethostname()}:{os.getppid()}")
    assert mark_interrupted(study) == [stale.number]
    assert study.trials[stale.number].user_attrs["reason"] == "interrupted"
    assert study.trials[live.number].state == TrialState.RUNNING  # another live process
    resumed = run_search(space, trials=3, threads=1, storage=url(tmp_path), epochs=1)
    assert [t.number for t in resumed.trials] == [0, 1, 2]


def test_cost_objectives_are_measured_on_the_compiled_network(tmp_path: Path) -> None:
    study = run_search(archc.loads(TINY), trials=2, threads=1, storage=url(tmp_path),
                       epochs=1, searcher="nsga2",
                       objective="minimize(latency), minimize(memory)")
    assert [d.name for d in study.directions] == ["MINIMIZE", "MINIMIZE"]
    for trial in study.trials:
        latency, memory = trial.values
        assert 0.0 < latency < 10_000.0  # milliseconds for 32 inputs of a tiny CNN
        assert memory == int(memory) > 0


def test_the_spec_timeout_stops_starting_trials(tmp_path: Path) -> None:
    text = TINY + "search {\n    timeout = 1s\n}\n"
    study = run_search(archc.loads(text), trials=50, threads=1, storage=url(tmp_path),
                       epochs=3)
    assert 1 <= len(study.trials) < 50  # each trial takes a while; none starts after 1 s
    assert all(t.state != TrialState.RUNNING for t in study.trials)


def test_a_steps_budget_stops_each_trial_after_that_many_steps(tmp_path: Path) -> None:
    text = TINY + "search {\n    budget = 3 steps per trial\n}\n"
    study = run_search(archc.loads(text), trials=2, threads=1, storage=url(tmp_path))
    for trial in study.trials:
        assert trial.state == TrialState.COMPLETE
        assert len(trial.user_attrs["metrics_per_epoch"]) == 1  # 3 steps end inside epoch 1
    assert study.user_attrs["steps"] == 3


def test_several_workers_in_one_process_are_refused_with_the_way_to_get_them(
        tmp_path: Path) -> None:
    text = TINY + "search {\n    workers = 4\n}\n"
    with pytest.raises(ArchError, match="several processes") as caught:
        run_search(archc.loads(text), trials=1, storage=url(tmp_path))
    assert "workers = 4" in str(caught.value)


def test_train_loss_and_random_arch_are_usable_as_the_spec_names_them(tmp_path: Path) -> None:
    study = run_search(archc.loads(TINY), trials=2, threads=1, storage=url(tmp_path), epochs=1,
                       searcher="random_arch", objective="minimize(train_loss)")
    assert [d.name for d in study.directions] == ["MINIMIZE"]
    assert all(t.state == TrialState.COMPLETE for t in study.trials)


def test_a_single_objective_searcher_with_two_objectives_is_located_at_the_spec(
        tmp_path: Path) -> None:
    text = TINY + ("search {\n    objective = maximize(val_accuracy), minimize(params)\n"
                   "    searcher = mcts\n}\n")
    message = located_error(text, tmp_path)
    assert "t.arch:14:16: error: searcher 'mcts' optimises one objective" in message
    assert "--searcher nsga2" in message and not (tmp_path / "archc.db").exists()


def test_a_pruner_the_spec_cannot_use_is_located_at_the_spec(tmp_path: Path) -> None:
    text = TINY + "search {\n    objective = minimize(params)\n    pruner = median\n}\n"
    assert "t.arch:14:14: error: pruner: the objective 'params' is not reported per epoch" \
        in located_error(text, tmp_path)
