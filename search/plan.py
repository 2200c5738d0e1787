"""A search's resolved settings: command-line options over the spec's `search { }` over defaults.

`make_plan` checks everything a search needs before its first trial — the searcher, the
pruner, the task and its data, the objectives' metric names (located at the spec) — so a
mistake fails at once with a message naming the flag or pointing at the spec, not after an
hour of training. The Python API (`archc.search(spec, …)`) and `archc search` share it.

What the study keeps of the plan (its user attributes) is what `archc evaluate` and
`archc export` need to rebuild the space and the task later: the spec's text and file name,
the task name and data path, and the objectives.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, cast

from archc.dsl import fields
from archc.dsl.point import Point
from archc.dsl.space import Space
from archc.errors import ArchError, CheckError, Span, did_you_mean
from archc.search import SEARCHERS, BaseSearcher
from archc.search._optuna import NSGAII, optuna
from archc.search.objectives import (
    Objective,
    check_metrics,
    field_span,
    from_spec,
    parse_objectives,
)
from archc.search.pruners import make_pruner
from archc.search.study import open_study
from archc.search.tasks import Task, get_task

__all__ = ["Plan", "make_plan"]

THREADS = 1
"""Torch threads per trial unless told otherwise: the networks a search trains are mostly small,
where a second thread gains little and, on a busy machine, costs a lot in contention; several
trials at once (workers), not threads, is how a search uses more cores."""

MULTI_SEARCHERS = ("nsga2",)
"""Searchers that take several objectives at once (the rest of `fields.SEARCHERS` are
`archc.search.SEARCHERS`)."""


@dataclass(frozen=True)
class Plan:
    """Everything one search run does, resolved and checked."""

    space: Space
    spec_text: str
    spec_name: str
    task: Task
    task_name: str
    data: str | None
    objectives: tuple[Objective, ...]
    searcher_name: str
    trials: int
    pruner: str
    storage: str | None
    study_name: str
    seed: int
    epochs: int | None
    seconds: float | None
    threads: int | None
    timeout: float | None = None
    steps: int | None = None

    @property
    def spec_hash(self) -> str:
        return hashlib.sha256(self.spec_text.encode()).hexdigest()[:16]

    @property
    def metric_names(self) -> tuple[str, ...]:
        return tuple(o.metric for o in self.objectives)

    @property
    def prunes(self) -> bool:
        return self.pruner != "none"

    def open(self) -> optuna.Study:
        """The study, created or resumed, with this plan's pruner and directions; the spec
        and task are stored as study attributes for `evaluate` and `export` (with the spec's
        folder, which the files it imports are relative to). Resuming with an
        edited spec replaces the stored one: `spec_changed_after` then holds how many trials
        the earlier spec made (each trial keeps its own spec hash), so the CLI can say so."""
        directions = [o.direction for o in self.objectives]
        pruner = make_pruner(self.pruner, max_epochs=self.epochs or 10)
        study = open_study(self.study_name, self.storage, directions, pruner=pruner)
        stored = [d.name.lower() for d in study.directions]
        if stored != directions:
            raise ArchError(f"study '{self.study_name}' was created with {len(stored)} "
                            f"objective(s) ({', '.join(stored)}), this search has "
                            f"{', '.join(map(str, self.objectives))}",
                            hint="name a new study with --study")
        earlier = study.user_attrs.get("spec")
        made = len(study.get_trials(deepcopy=False))
        changed = made > 0 and earlier is not None and earlier != self.spec_text
        study.set_user_attr("spec_changed_after", made if changed else None)
        source = Path(self.spec_name)
        attrs = {"spec": self.spec_text, "spec_name": self.spec_name, "task": self.task_name,
                 "spec_dir": str(source.resolve().parent) if source.is_file() else None,
                 "data": self.data, "objectives": [str(o) for o in self.objectives],
                 "epochs": self.epochs, "seconds": self.seconds, "steps": self.steps,
                 "threads": self.threads}
        for key, value in attrs.items():
            study.set_user_attr(key, value)
        return study

    def searcher(self) -> BaseSearcher:
        if self.searcher_name == "nsga2":
            return NSGAII(self.space, seed=self.seed, n_objectives=len(self.objectives))
        return SEARCHERS[self.searcher_name](self.space, seed=self.seed)

    def settings(self, point: Mapping[str, Any]) -> dict[str, Any]:
        from archc.search.trainer import train_settings
        return train_settings(self.space, Point(point))


def make_plan(space: Space, *, spec_text: str = "", spec_name: str = "<spec>",
              searcher: str | None = None, trials: int | None = None,
              task: str | None = None, data: str | None = None,
              objective: str | None = None, pruner: str | None = None,
              storage: str | None = None, study: str | None = None, seed: int | None = None,
              epochs: int | None = None, seconds: float | None = None,
              threads: int | None = None, timeout: float | None = None) -> Plan:
    """Resolve each option: the argument, else the spec's `search { }`, else the default.
    Errors name the flag (`--searcher`, `--pruner`, …) or point at the spec."""
    spec = space.search
    objectives = (parse_objectives(objective) if objective
                  else from_spec(spec.get("objective")))
    task_name = task or str(spec.get("task") or _default("task"))
    the_task = get_task(task_name, data)
    task_metrics = [metric for metric, _ in the_task.metrics]
    check_metrics(objectives, task_metrics, task=task_name,
                  spec_text="" if objective else spec_text, spec_name=spec_name)
    chosen = searcher or cast(str | None, spec.get("searcher")) or (
        "nsga2" if len(objectives) > 1 else _default("searcher"))
    locate = partial(field_span, spec_text, spec_name)  # called on an error path only
    _check_searcher(chosen, objectives, searcher is not None, locate)
    pruner_name = pruner or str(spec.get("pruner") or _default("pruner"))
    make_pruner(pruner_name)  # an unknown name fails here, before the study exists
    if pruner_name != "none":
        _check_prunable(objectives, task_metrics, pruner is not None, locate)
    workers = int(cast(int, spec.get("workers") or _default("workers")))
    if workers > 1:
        raise CheckError(f"search field 'workers = {workers}': one archc process runs one trial "
                         "at a time", locate("workers"),
                         "run `archc search` in several processes on one --storage "
                         "(PostgreSQL, or SQLite for a few): each takes the next trials")
    budget = cast(dict, spec.get("budget") or {})
    limit = cast(dict, spec.get("timeout") or {})
    return Plan(space=space, spec_text=spec_text, spec_name=spec_name, task=the_task,
                task_name=task_name, data=data, objectives=objectives, searcher_name=chosen,
                trials=trials or int(cast(int, spec.get("trials") or _default("trials"))),
                pruner=pruner_name, storage=storage or cast(str, spec.get("storage")) or None,
                study_name=study or cast(str, spec.get("study")) or space.name,
                seed=int(cast(int, spec.get("seed") or _default("seed"))) if seed is None
                else seed,
                epochs=epochs or budget.get("epochs"),
                seconds=seconds or budget.get("seconds"), threads=threads or THREADS,
                timeout=timeout or limit.get("seconds"), steps=budget.get("steps"))


def _default(name: str) -> Any:
    """The default of search field `name` (SEARCH_FIELDS): what a spec without it gets."""
    return fields.SEARCH_FIELDS[name].default


Locate = Callable[[str], Span | None]
"""Where the spec's `search { }` writes a field (`field_span` bound to the spec's text)."""


def _check_searcher(name: str, objectives: tuple[Objective, ...], from_flag: bool,
                    locate: Locate) -> None:
    """The searcher exists and takes as many objectives as the search has; one from --searcher
    names the flag, one named in the spec is reported at its line."""
    known = fields.SEARCHERS
    if name not in known:
        raise ArchError(f"unknown searcher '{name}'" + (" (--searcher)" if from_flag else ""),
                        hint=did_you_mean(name, known) or f"searchers: {', '.join(known)}")
    if len(objectives) > 1 and name not in MULTI_SEARCHERS:
        flag = "--searcher: " if from_flag else ""
        raise CheckError(f"{flag}searcher '{name}' optimises one objective; this search has "
                         f"{len(objectives)} ({', '.join(map(str, objectives))})",
                         None if from_flag else locate("searcher"),
                         "several objectives search with NSGA-II: use --searcher nsga2 "
                         "(or set `searcher = nsga2` in search { })")


def _check_prunable(objectives: tuple[Objective, ...], task_metrics: list[str],
                    from_flag: bool, locate: Locate) -> None:
    """A pruner needs one objective reported per epoch; the error names --pruner, or points at
    the spec's `pruner` field."""
    where = "--pruner" if from_flag else "pruner"
    if len(objectives) > 1:
        raise CheckError(f"{where}: a pruner needs a single objective (optuna prunes "
                         f"single-objective studies only); this search has {len(objectives)}",
                         None if from_flag else locate("pruner"), "use --pruner none")
    if objectives[0].metric not in task_metrics:
        raise CheckError(f"{where}: the objective '{objectives[0].metric}' is not reported "
                         "per epoch (a cost of the network, known before training)",
                         None if from_flag else locate("pruner"),
                         "use --pruner none, or a task metric such as val_accuracy")
