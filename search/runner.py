"""The search loop: ask a point, compile it, reuse or train it, record the trial, tell the score.

Every trial lands in the study whatever happens to it: a point the compiler refuses (a located
user error, such as a violated `require params < …`), a training failure (NaN loss, out of
memory), a trial a pruner stopped and a success are all recorded with their reason, and the
loop goes on. A point whose network was already trained with the same training settings reuses
that result (the stored key is `<structural hash>:<settings hash>`: joint searches vary the
settings too).

Resuming: re-running the same search restores the searcher from the study's history and runs
until the study holds `trials`. A process that was killed leaves its trial RUNNING; the next
run marks such stale trials failed ("interrupted") before it starts, and numbering goes on.
Ctrl-C records the running trial as failed ("interrupted") and raises `Interrupted`, which
carries the study, so nothing finished is lost.

Several objectives (`objectives.py`) search with NSGA-II in a multi-objective optuna study;
pruners (`pruners.py`) stop weak trials from their per-epoch reports.
This module imports torch (through the tasks); the searchers themselves do not.
"""

from __future__ import annotations

import hashlib
import json
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch

from archc.compiler.identity import structural_hash
from archc.dsl.point import Point
from archc.dsl.space import Space
from archc.errors import ArchError
from archc.search._optuna import optuna
from archc.search.objectives import Objective, signed
from archc.search.plan import Plan, make_plan
from archc.search.study import (
    begin_trial,
    find_by_hash,
    history,
    known_domains,
    mark_interrupted,
    record_trial,
)
from archc.search.tasks import Task
from archc.search.trainer import compile_seeded

__all__ = ["Outcome", "Interrupted", "run_search", "cost_metrics"]


@dataclass(frozen=True)
class Outcome:
    """One finished trial, as the CLI's live progress shows it. `values` are the objectives'
    values in order (None when the trial failed); `score` is the first of them."""

    number: int
    status: str  # complete | fail | pruned | reused
    values: tuple[float, ...] | None
    params: int | None
    seconds: float
    reason: str | None = None

    @property
    def score(self) -> float | None:
        return self.values[0] if self.values else None

    @property
    def reused(self) -> bool:
        return self.status == "reused"


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a search: the running trial is recorded failed ("interrupted") and the
    study, with every finished trial, is `self.study`."""

    def __init__(self, study: optuna.Study) -> None:
        super().__init__("search interrupted")
        self.study = study


def run_search(space: Space, *, spec_text: str = "", spec_name: str = "<spec>",
               on_trial: Callable[[Outcome], None] | None = None,
               on_start: Callable[[Plan, optuna.Study], None] | None = None,
               **options: Any) -> optuna.Study:
    """Search `space` until the study holds `trials` trials (or `timeout` seconds have passed:
    no trial starts after that), and return the study. Options (searcher, trials, task, data,
    objective, pruner, storage, study, seed, epochs, seconds, threads, timeout) override the
    spec's `search { }`; see `plan.make_plan`."""
    plan = make_plan(space, spec_text=spec_text, spec_name=spec_name, **options)
    study = plan.open()
    mark_interrupted(study)
    known = known_domains(study)  # a decision the edited spec re-domains fails at its trial
    proposer = plan.searcher()
    proposer.restore([(p, _told(plan.objectives, r)) for p, r in history(study)
                      if _fits(plan.space, p, plan.task.constants)])
    if on_start is not None:
        on_start(plan, study)
    trial: optuna.Trial | None = None
    began = time.perf_counter()
    try:
        while len(study.get_trials(deepcopy=False)) < plan.trials and not (
                plan.timeout and time.perf_counter() - began >= plan.timeout):
            point = proposer.ask()
            trial = begin_trial(study, space, point, known)
            outcome = _Trial(plan, study, trial, point).run()
            proposer.tell(point, _told(plan.objectives, outcome.values))
            if on_trial is not None:
                on_trial(outcome)
    except KeyboardInterrupt:
        if trial is not None:
            mark_interrupted(study, trial.number)  # a no-op once the trial was recorded
        raise Interrupted(study) from None
    return study


def _told(objectives: Sequence[Objective], result: Any) -> Any:
    """A stored result as the searcher takes it: maximised scores, one float or a tuple
    (NSGA-II's `tell` takes the tuple; the single-objective searchers a float)."""
    if result is None:
        return None
    values = signed(objectives, result if isinstance(result, Sequence) else (result,))
    return values[0] if len(values) == 1 else values


@dataclass
class _Trial:
    """One trial's run: compile, cost, reuse or fit, record."""

    plan: Plan
    study: optuna.Study
    trial: optuna.Trial
    point: Point
    start: float = field(default_factory=time.perf_counter)

    def run(self) -> Outcome:
        plan, number = self.plan, self.trial.number
        seed = plan.seed + number
        record = partial(record_trial, self.study, self.trial, point=self.point, seed=seed,
                         spec_hash=plan.spec_hash)
        try:
            built = compile_seeded(plan.space, self.point, plan.task, seed)
        except ArchError as err:
            reason = err.diagnostics[0].message
            record(structural_hash="", status="fail", reason=reason, wall_time=self._took())
            return Outcome(number, "fail", None, None, self._took(), reason)
        try:
            costs = cost_metrics(built, plan.task, latency="latency" in plan.metric_names)
        except Exception as error:  # a model that cannot run fails its trial, not the search
            reason = f"{type(error).__name__}: {error}"
            record(structural_hash="", status="fail", reason=reason, wall_time=self._took())
            return Outcome(number, "fail", None, built.cost.params, self._took(), reason)
        settings = plan.settings(self.point)
        key = f"{structural_hash(built.arch)}:{_digest(settings)}"
        record = partial(record, structural_hash=key, params=built.cost.params,
                         flops=built.cost.flops)
        earlier = find_by_hash(self.study, key)
        if earlier is not None:
            reason = f"reused trial {earlier.number}: same network and settings"
            # the seed stored is the one that trained the network scored, so that
            # retraining this trial (archc export) reproduces its score
            record(value=earlier.values, reason=reason, wall_time=0.0,
                   metrics_per_epoch=earlier.user_attrs.get("metrics_per_epoch", ()),
                   seed=earlier.user_attrs.get("seed", seed))
            return Outcome(number, "reused", tuple(earlier.values), built.cost.params,
                           self._took(), reason)
        epochs: list[dict[str, float]] = []
        try:
            result = plan.task.fit(built, settings, seed=seed, budget_epochs=plan.epochs,
                                   budget_seconds=plan.seconds, budget_steps=plan.steps,
                                   threads=plan.threads,
                                   report=partial(self._report, epochs))
        except optuna.TrialPruned:
            last = epochs[-1] if epochs else {}
            reason = f"pruned after {len(epochs)} epoch(s)"
            record(status="pruned", reason=reason, metrics_per_epoch=epochs,
                   wall_time=self._took())
            value = last.get(plan.objectives[0].metric)
            return Outcome(number, "pruned", None if value is None else (value,),
                           built.cost.params, self._took(), reason)
        metrics = {**result.metrics, **costs}
        values, why = _values(plan.objectives, metrics) if result.ok else (None,
                                                                          result.reason)
        status = "complete" if values is not None else "fail"
        record(value=values, status=status, reason=why, metrics_per_epoch=result.history,
               wall_time=result.seconds)
        return Outcome(number, status, values, built.cost.params, self._took(), why)

    def _report(self, epochs: list[dict[str, float]], epoch: int,
                metrics: dict[str, float]) -> None:
        """Per-epoch: keep the metrics; with a pruner, report the objective and maybe prune."""
        epochs.append(dict(metrics))
        metric = self.plan.objectives[0].metric
        if self.plan.prunes and metric in metrics:
            self.trial.report(float(metrics[metric]), epoch)
            if self.trial.should_prune():
                raise optuna.TrialPruned()

    def _took(self) -> float:
        return time.perf_counter() - self.start


def _values(objectives: Sequence[Objective], metrics: dict[str, float]
            ) -> tuple[tuple[float, ...] | None, str | None]:
    missing = [o.metric for o in objectives if metrics.get(o.metric) is None]
    if missing:
        return None, f"no value for {', '.join(missing)}"
    return tuple(float(metrics[o.metric]) for o in objectives), None


def cost_metrics(built: Any, task: Task, *, latency: bool = False, repeats: int = 5
                 ) -> dict[str, float]:
    """params, FLOPs and memory (activation bytes) from the cost model; with `latency`, the
    median wall time in milliseconds of `repeats` forward passes on 32 validation inputs
    (eval mode, no grad, after one warm-up)."""
    out: dict[str, float] = {"params": float(built.cost.params),
                             "flops": float(built.cost.flops),
                             "memory": float(built.cost.activation_bytes)}
    if latency:
        module, batch = built.module, task.val[0][:32]
        was_training = module.training
        module.eval()
        times = []
        with torch.no_grad():
            module(batch)
            for _ in range(repeats):
                begin = time.perf_counter()
                module(batch)
                times.append(1000 * (time.perf_counter() - begin))
        module.train(was_training)
        out["latency"] = statistics.median(times)
    return out


def _digest(settings: dict[str, object]) -> str:
    """A short, stable hash of the resolved training settings."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _fits(space: Space, point: Point, constants: dict[str, int]) -> bool:
    """Whether a stored point belongs to the space: a study resumed with an edited spec keeps
    its earlier trials, but the searcher learns only from those the new space can propose."""
    try:
        space.validate(point, constants)
    except ArchError:
        return False
    return True
