"""The search loop: ask a point, compile it, reuse or train it, record the trial, tell the score.

Every trial lands in the study whatever happens to it: a point the compiler refuses (a located
user error, such as a violated `require params < …`), a training failure (NaN loss, out of
memory) and a success are all recorded with their reason, and the loop goes on. A point whose
network was already trained with the same training settings reuses that result (the stored
key is `<structural hash>:<settings hash>`: joint searches vary the settings too). Re-running
the same search resumes: the searcher is restored from the study's history and the loop runs
until the study holds `trials`.

This module imports torch (through the trainer); the searchers themselves do not.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import cast

import optuna
import torch

import archc
from archc.compiler.identity import structural_hash
from archc.dsl.point import Point
from archc.dsl.space import Space
from archc.errors import ArchError
from archc.search import SEARCHERS
from archc.search.study import begin_trial, find_by_hash, history, open_study, record_trial
from archc.search.tasks import Task, get_task
from archc.search.trainer import train, train_settings

__all__ = ["Outcome", "run_search"]

OBJECTIVE = "val_accuracy"
"""The score searchers maximise (several objectives arrive with the multi-objective runner)."""


@dataclass(frozen=True)
class Outcome:
    """One finished trial, as the CLI's live progress shows it."""

    number: int
    status: str
    score: float | None
    params: int | None
    seconds: float
    reason: str | None = None
    reused: bool = False


def run_search(space: Space, *, spec_text: str = "", searcher: str = "random",
               trials: int = 20, task: str | None = None, storage: str | None = None,
               study: str | None = None, seed: int = 0, epochs: int | None = None,
               seconds: float | None = None, threads: int | None = None,
               on_trial: Callable[[Outcome], None] | None = None) -> optuna.Study:
    """Search `space` until the study holds `trials` trials, and return the study."""
    if searcher not in SEARCHERS:
        raise ArchError(f"unknown searcher '{searcher}'",
                        hint=f"searchers: {', '.join(SEARCHERS)}")
    the_task = get_task(task or str(space.search.get("task", "digits")))
    the_study = open_study(study or space.name, storage)
    proposer = SEARCHERS[searcher](space, seed=seed)
    proposer.restore(cast(list[tuple[Point, float | None]], history(the_study)))
    spec_hash = hashlib.sha256(spec_text.encode()).hexdigest()[:16]
    while len(the_study.trials) < trials:
        point = proposer.ask()
        trial = begin_trial(the_study, space, point)
        outcome = _run_trial(space, the_study, trial, point, the_task, spec_hash,
                             seed + trial.number, epochs, seconds, threads)
        proposer.tell(point, outcome.score)
        if on_trial is not None:
            on_trial(outcome)
    return the_study


def _run_trial(space: Space, study: optuna.Study, trial: optuna.Trial, point: Point,
               task: Task, spec_hash: str, seed: int, epochs: int | None,
               seconds: float | None, threads: int | None) -> Outcome:
    start = time.perf_counter()
    record = partial(record_trial, study, trial, point=point, seed=seed, spec_hash=spec_hash)
    try:
        torch.manual_seed(seed)
        built = archc.compile(space, point, task.constants, task.dims)
    except ArchError as err:
        reason = err.diagnostics[0].message
        record(structural_hash="", status="fail", reason=reason,
               wall_time=time.perf_counter() - start)
        return Outcome(trial.number, "fail", None, None, time.perf_counter() - start, reason)
    settings = train_settings(space, point)
    key = f"{structural_hash(built.arch)}:{_digest(settings)}"
    record = partial(record, structural_hash=key, params=built.cost.params,
                     flops=built.cost.flops)
    earlier = find_by_hash(study, key)
    if earlier is not None:
        record(value=earlier.value, reason=f"same network and settings as trial "
               f"{earlier.number}", wall_time=0.0,
               metrics_per_epoch=earlier.user_attrs.get("metrics_per_epoch", ()))
        return Outcome(trial.number, "reused", earlier.value, built.cost.params,
                       time.perf_counter() - start, reused=True)
    result = train(built, task, settings, seed=seed, budget_epochs=epochs,
                   budget_seconds=seconds, threads=threads)
    score = result.metrics.get(OBJECTIVE) if result.ok else None
    record(value=score, status="complete" if result.ok else "fail", reason=result.reason,
           metrics_per_epoch=result.history, wall_time=result.seconds)
    return Outcome(trial.number, "complete" if result.ok else "fail", score,
                   built.cost.params, time.perf_counter() - start, result.reason)


def _digest(settings: dict[str, object]) -> str:
    """A short, stable hash of the resolved training settings."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]
