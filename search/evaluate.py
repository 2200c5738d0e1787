"""After a search: rank a study's trials, retrain winners on fresh seeds and score them on the
test split, export one as plain PyTorch. What `archc show`, `archc evaluate` and `archc export`
call.

The study carries what is needed to rebuild each trial (stored by `Plan.open` at search time):
the spec's text, its file name and folder, the task, its data path, the objectives and the
budget. So a study alone — the SQLite file — is enough; the spec file may have moved or changed
since. A spec that imports other files is the exception: only its own text is stored, and its
imports are read again from the spec's folder (which must still hold them).

Evaluation protocol (DESIGN.md §7): the search only ever scored the validation split with
seeds `seed + trial number`; `evaluate` retrains each chosen point on `EVAL_SEEDS` (fresh seeds
10000, 10001, …) with the same settings and budget, and reports the test split's metrics as
mean ± standard deviation over those seeds. The results are also kept in the study (user
attribute `evaluation`), where `archc show` reads them.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import archc
from archc.dsl.fields import SEARCH_FIELDS
from archc.dsl.point import Point
from archc.dsl.space import Space
from archc.errors import ArchError
from archc.search._optuna import TrialState, optuna
from archc.search.objectives import Objective, from_stored

if TYPE_CHECKING:
    from archc.search.tasks import Task

__all__ = ["Search", "EVAL_SEED", "Evaluation", "ranked", "pareto_front", "evaluate",
           "export_trial"]

EVAL_SEED = 10_000
"""The first of the fresh seeds `evaluate` retrains with (10000, 10001, …)."""


@dataclass(frozen=True)
class Search:
    """A finished (or running) search as stored: the study and what rebuilds its trials."""

    study: optuna.Study
    space: Space
    objectives: tuple[Objective, ...]
    task_name: str
    data: str | None
    epochs: int | None
    seconds: float | None
    threads: int | None
    steps: int | None = None

    @classmethod
    def of(cls, study: optuna.Study) -> Search:
        attrs = study.user_attrs
        if "spec" not in attrs:
            raise ArchError(f"study '{study.study_name}' holds no spec",
                            hint="it was not made by `archc search` (or by an older archc)")
        space = archc.loads(attrs["spec"], name=attrs.get("spec_name") or "<study spec>",
                            base=attrs.get("spec_dir") or ".")  # what its imports are relative to
        objectives = from_stored(attrs.get("objectives"))
        task = attrs.get("task") or str(SEARCH_FIELDS["task"].default)
        return cls(study, space, objectives, task, attrs.get("data"), attrs.get("epochs"),
                   attrs.get("seconds"), attrs.get("threads"), attrs.get("steps"))

    def task(self) -> Task:
        """The search's task (imported here: the tasks import torch, which `archc show`
        needs not)."""
        from archc.search.tasks import get_task
        return get_task(self.task_name, self.data)

    def trial(self, which: str, flag: str = "--trial") -> optuna.trial.FrozenTrial:
        """Trial `which`: "best" (the best by the first objective) or a trial number; one
        out of range, or one that did not complete, is an error naming `flag`."""
        trials = self.study.get_trials(deepcopy=False)
        if which == "best":
            done = ranked(self.study, self.objectives)
            if not done:
                raise ArchError(f"study '{self.study.study_name}' has no complete trial yet",
                                hint="run `archc search` until one completes")
            return done[0]
        if not which.isdigit():
            raise ArchError(f"{flag} takes 'best' or a trial number, not '{which}'")
        number = int(which)
        if number >= len(trials):
            raise ArchError(f"{flag} {number}: out of range (the study has trials 0 to "
                            f"{len(trials) - 1})" if trials else f"{flag} {number}: the study "
                            "has no trials")
        trial = next(t for t in trials if t.number == number)
        if trial.state != TrialState.COMPLETE:
            reason = trial.user_attrs.get("reason") or trial.state.name.lower()
            raise ArchError(f"{flag} {number}: trial {number} did not complete ({reason})",
                            hint=f"choose a complete trial, e.g. {flag} best")
        return trial

    def point(self, trial: optuna.trial.FrozenTrial) -> Point:
        return self.space.validate(trial.user_attrs.get("point") or trial.params)

    def train(self, trial: optuna.trial.FrozenTrial, seed: int, test: bool = False
              ) -> tuple[Any, Any]:
        """Compile trial's point under `seed` and fit it with the search's settings, budget
        and threads per trial: (compiled, TrainResult)."""
        from archc.search.plan import THREADS
        from archc.search.trainer import compile_seeded, train_settings
        task, point = self.task(), self.point(trial)
        built = compile_seeded(self.space, point, task, seed)
        result = task.fit(built, train_settings(self.space, point), seed=seed,
                          budget_epochs=self.epochs, budget_seconds=self.seconds,
                          budget_steps=self.steps, threads=self.threads or THREADS, test=test)
        return built, result


def ranked(study: optuna.Study, objectives: tuple[Objective, ...]
           ) -> list[optuna.trial.FrozenTrial]:
    """The complete trials, best first by the first objective (ties: fewer parameters)."""
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    sign = -1.0 if objectives[0].direction == "maximize" else 1.0
    return sorted(done, key=lambda t: (sign * t.values[0],
                                       t.user_attrs.get("param_count") or 0, t.number))


def pareto_front(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """The non-dominated complete trials (optuna's `best_trials`), by trial number."""
    return sorted(study.best_trials, key=lambda t: t.number)


@dataclass(frozen=True)
class Evaluation:
    """One trial retrained on fresh seeds: test metrics over the seeds that completed."""

    number: int
    val: float
    seeds: tuple[int, ...]
    runs: tuple[dict[str, float], ...]
    failures: tuple[str, ...] = field(default=())

    def summary(self) -> dict[str, tuple[float, float]]:
        """test metric → (mean, standard deviation over seeds; 0 for one seed)."""
        names = sorted({k for run in self.runs for k in run if k.startswith("test_")})
        out = {}
        for name in names:
            values = [run[name] for run in self.runs if name in run]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            out[name] = (statistics.fmean(values), spread)
        return out


def evaluate(search: Search, top: int, seeds: int,
             on_run: Any = None) -> list[Evaluation]:
    """Retrain the `top` best distinct networks (a reused trial is its original) on `seeds`
    fresh seeds each (test split scored), keep the results in the study, and return them best
    first. `on_run(number, seed, result)` is called after each training, for progress: the
    TrainResult, or the compiler's reason (a string) when the point was refused."""
    search.task()  # a task or data error is the user's, before any training
    out = []
    for trial in _distinct(ranked(search.study, search.objectives))[:top]:
        runs, failures, used = [], [], tuple(range(EVAL_SEED, EVAL_SEED + seeds))
        for seed in used:
            try:
                _, result = search.train(trial, seed, test=True)
            except ArchError as error:  # the compiler refused the point
                result = error.diagnostics[0].message
            if isinstance(result, str) or not result.ok:
                failures.append(result if isinstance(result, str) else
                                result.reason or "failed")
            else:
                runs.append(dict(result.metrics))
            if on_run is not None:
                on_run(trial.number, seed, result)
        out.append(Evaluation(trial.number, trial.values[0], used, tuple(runs),
                              tuple(failures)))
    stored = {str(e.number): {k: list(v) for k, v in e.summary().items()} | {
        "seeds": len(e.runs)} for e in out}
    search.study.set_user_attr("evaluation", stored)
    return out


def _distinct(trials: list[optuna.trial.FrozenTrial]) -> list[optuna.trial.FrozenTrial]:
    """The trials without repeats of a network trained before with the same settings (a
    reused trial has the structural hash of the one it reused): evaluating both would
    retrain the same thing twice."""
    seen: set[str] = set()
    out = []
    for trial in trials:
        key = trial.user_attrs.get("structural_hash") or f"#{trial.number}"
        if key not in seen:
            seen.add(key)
            out.append(trial)
    return out


def export_trial(search: Search, trial: optuna.trial.FrozenTrial, out: str | Path,
                 format: str = "py", trained: bool = True) -> tuple[list[Path], dict]:
    """Export trial's network to `out`: retrained with the trial's own seed (so its weights
    are those the search scored: same seed, same result) unless `trained` is False, in which
    case the freshly initialised network. Returns (files written, final metrics)."""
    from archc.compiler.export import FORMATS, export
    if format not in FORMATS:
        raise ArchError(f"--format must be one of {', '.join(FORMATS)}, not '{format}'")
    seed = int(trial.user_attrs.get("seed") or 0)
    if trained:
        built, result = search.train(trial, seed, test=True)
        if not result.ok:
            raise ArchError(f"trial {trial.number} failed when retrained: {result.reason}")
        metrics = dict(result.metrics)
    else:
        from archc.search.trainer import compile_seeded
        task = search.task()
        built = compile_seeded(search.space, search.point(trial), task, seed)
        metrics = {}
    files = export(built.module, search.space.name, built.point, out, format=format)
    return files, metrics
