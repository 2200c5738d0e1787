"""Train a compiled point on a task: the `train { }` settings, a budget, per-epoch reports.

A search trains many candidates and must outlive the bad ones, so everything a candidate can
do wrong — NaN/inf loss, out of memory, a shape error or any other exception from the model —
becomes a `TrainResult` with status "failed" and a reason, never an exception. Two things do
propagate: an `ArchError` for settings archc cannot honour (the user's error, raised before the
first step), and whatever `report` raises (that is how an optuna pruner stops a trial).

Seeding: the weights are made when the point is compiled, so compile under
`torch.manual_seed(seed)` (`compile_seeded`); `train` then seeds torch again (dropout) and draws
the data order from its own `torch.Generator(seed)`. Same seed, same compile → the same
metrics, bit for bit.

Losses: the task's `loss` — "classification" (cross-entropy of (b, classes) logits against
labels, with label smoothing) or "lm" (the same at every position of (b, t, vocab) logits
against the next tokens). Auxiliary losses: any submodule (the GraphModule itself included)
with a method `aux_loss() -> Tensor` contributes it, already weighted, to every training
step's loss; it should return the auxiliary loss of its latest forward (e.g. a
mixture-of-experts balance loss).

Dropout: the `dropout` setting is the rate of every dropout site the spec left at 0 — each
`nn.Dropout` with p = 0 and each block's own rate (attention's `dropout`) that is 0, i.e. the
blocks with a dropout hyperparameter not set in the spec. A site the spec set keeps its rate
(an explicit `dropout(p = …)` block, `mlp(dropout = 0.2)`); 0 in the spec reads as "not set".
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn

import archc
from archc.dsl import ir
from archc.dsl.fields import TRAIN_FIELDS
from archc.dsl.space import Space
from archc.dsl.walk import evaluate as evaluate_value
from archc.errors import ArchError
from archc.search.optimizers import lr_factor, make_optimizer
from archc.search.tasks_base import Report, Task

__all__ = ["TrainResult", "train", "evaluate", "train_settings", "apply_dropout",
           "compile_seeded"]

_EVAL_BATCH = 1024
_LOSSES = ("classification", "lm")


@dataclass(frozen=True)
class TrainResult:
    """How training went: status "complete" or "failed" (with `reason`), one metrics dict per
    epoch run (train_loss, val_loss, val_accuracy, and val_bpc for "lm"), and what was
    spent. A time budget that ran out is a complete result, with `reason` saying so."""

    status: str
    reason: str | None = None
    history: tuple[dict[str, float], ...] = field(default=())
    epochs: int = 0
    steps: int = 0
    seconds: float = 0.0

    @property
    def metrics(self) -> dict[str, float]:
        """The last epoch's metrics ({} when no epoch finished)."""
        return dict(self.history[-1]) if self.history else {}

    @property
    def ok(self) -> bool:
        return self.status == "complete"


def train_settings(space: Space, point: Mapping[str, Any]) -> dict[str, Any]:
    """Every train field's value: TRAIN_FIELDS defaults, overridden by the space's `train { }`
    lets — constants evaluated, decisions taken from `point` (a let may read an earlier one)."""
    settings = {name: hyper.default for name, hyper in TRAIN_FIELDS.items()}
    values: dict[str, Any] = dict(point)
    for step in space.train.steps:
        if not isinstance(step, ir.Let) or not step.path.startswith("train."):
            continue
        path = step.path
        try:
            value = evaluate_value(step.value, values)
        except KeyError as error:
            raise ArchError(f"the point does not decide {error.args[0]}", span=step.span
                            ) from None
        values[path] = settings[path.removeprefix("train.")] = value
    return settings


def compile_seeded(space: Space, point: Mapping[str, Any], task: Task, seed: int) -> Any:
    """`point` compiled for `task` with torch seeded by `seed`, so its initial weights are a
    function of the seed (see Seeding above); a point the compiler refuses raises its
    ArchError."""
    torch.manual_seed(seed)
    return archc.compile(space, point, task.constants, task.dims)


def train(compiled: Any, task: Task, settings: Mapping[str, Any], *, seed: int,
          budget_epochs: int | None = None, budget_seconds: float | None = None,
          report: Report | None = None, threads: int | None = None, test: bool = False,
          budget_steps: int | None = None) -> TrainResult:
    """Train `compiled.module` in place on `task.train`, scoring `task.val` after each epoch.

    `budget_epochs` replaces the settings' epoch count and `budget_steps` (or a positive
    `steps` setting) stops after that many optimizer steps instead; the schedule is sized to
    whichever applies. `budget_seconds` stops early but counts as a normal finish.
    `report(epoch, metrics)` is called after each epoch (1-based); what it raises propagates.
    With `test`, the last epoch's metrics also hold the test split's (test_accuracy,
    test_loss, …): only `archc evaluate` asks for them. `threads` sets torch's CPU threads for
    the run (restored afterwards).
    """
    model: nn.Module = getattr(compiled, "module", compiled)
    settings = dict(settings)
    if budget_steps is not None:
        settings["steps"] = budget_steps
    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        result = _Run(model, task, settings, seed, budget_epochs, budget_seconds, report).run()
        if test and result.ok and result.history:
            scores = {f"test_{k}": v for k, v in evaluate(model, task, "test").items()}
            result = replace(result, history=(*result.history[:-1],
                                              {**result.history[-1], **scores}))
    finally:
        torch.set_num_threads(previous_threads)
    return result


def evaluate(module: Any, task: Task, split: str = "test") -> dict[str, float]:
    """Accuracy and mean cross-entropy of `module` on one split of `task`, in eval mode (for
    "lm", per token, with bits per character `bpc` = loss / ln 2)."""
    model: nn.Module = getattr(module, "module", module)
    x, y = task.split(split)
    was_training = model.training
    model.eval()
    loss, correct = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(y), _EVAL_BATCH):
            logits, target = _flat(model(x[start:start + _EVAL_BATCH]),
                                   y[start:start + _EVAL_BATCH])
            loss += nn.functional.cross_entropy(logits, target, reduction="sum").item()
            correct += int((logits.argmax(-1) == target).sum())
    model.train(was_training)
    count = y.numel()
    metrics = {"accuracy": correct / count, "loss": loss / count}
    if task.loss == "lm":
        metrics["bpc"] = metrics["loss"] / math.log(2)
    return metrics


def _flat(logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(b, classes) logits and (b,) labels as they are; (b, t, vocab) and (b, t) flattened to
    one prediction per position."""
    return logits.reshape(-1, logits.shape[-1]), target.reshape(-1)


def apply_dropout(model: nn.Module, rate: float) -> int:
    """Set every dropout site left at 0 to `rate` (see the module docstring); how many."""
    if rate <= 0:
        return 0
    changed = 0
    for module in model.modules():
        if isinstance(module, nn.modules.dropout._DropoutNd):
            if module.p == 0:
                module.p, changed = rate, changed + 1
            continue
        own = getattr(module, "dropout", None)  # a block's own rate, e.g. attention's
        if isinstance(own, numbers.Real) and not isinstance(own, bool) and own == 0:
            setattr(module, "dropout", rate)  # noqa: B010 (a duck-typed attribute)
            changed += 1
    return changed


AuxLoss = Callable[[], Any]
"""A submodule's bound `aux_loss` method."""


def _aux_methods(model: nn.Module) -> list[AuxLoss]:
    """The `aux_loss` methods of the model and its submodules. A run collects them once: the
    modules do not change while it trains."""
    return [getattr(m, "aux_loss") for m in model.modules()  # noqa: B009 (duck-typed)
            if callable(getattr(m, "aux_loss", None))]


def _aux_loss(model: nn.Module, methods: Sequence[AuxLoss] | None = None
              ) -> torch.Tensor | None:
    """The sum of every submodule's `aux_loss()` (None when no module has one, or every one
    says None: nothing to add since its last forward). `methods`: the model's
    `_aux_methods`, when collected already."""
    losses = [method() for method in (_aux_methods(model) if methods is None else methods)]
    present = [torch.as_tensor(x).sum() for x in losses if x is not None]
    return torch.stack(present).sum() if present else None


class _Failed(Exception):
    """Ends a run as a failed trial with this reason."""


class _Run:
    """One training run's state; `run` is the loop, `_epoch` one pass over the data."""

    def __init__(self, model: nn.Module, task: Task, settings: dict[str, Any], seed: int,
                 budget_epochs: int | None, budget_seconds: float | None,
                 report: Report | None) -> None:
        self.model, self.task, self.s, self.report = model, task, settings, report
        self.budget_seconds = budget_seconds
        n, batch = len(task.train[1]), int(settings["batch"])
        self.epochs = int(budget_epochs or settings["epochs"])
        per_epoch = math.ceil(n / batch)
        self.total = int(settings["steps"]) or self.epochs * per_epoch
        if settings["steps"]:
            self.epochs = math.ceil(self.total / per_epoch)
        torch.manual_seed(seed)
        self.order = torch.Generator().manual_seed(seed)
        if task.loss not in _LOSSES:
            raise ArchError(f"task '{task.name}' has loss '{task.loss}', which the trainer "
                            f"does not know", hint=f"use one of {', '.join(_LOSSES)}")
        self.optimizer = make_optimizer(model.parameters(), settings)
        warmup = round(settings["warmup"] * self.total)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lr_factor(settings["schedule"], self.total, warmup))
        apply_dropout(model, float(settings["dropout"]))
        self.aux_methods = _aux_methods(model)
        self.steps, self.start = 0, time.perf_counter()

    def _out_of_time(self) -> bool:
        return (self.budget_seconds is not None
                and time.perf_counter() - self.start >= self.budget_seconds)

    def run(self) -> TrainResult:
        history: list[dict[str, float]] = []
        for epoch in range(1, self.epochs + 1):
            try:
                train_loss = self._epoch()
                val = evaluate(self.model, self.task, "val")
            except _Failed as failure:
                return self._result("failed", str(failure), history)
            except Exception as error:  # any model error fails the trial, not the search
                return self._result("failed", _reason(error), history)
            history.append({"train_loss": train_loss,
                            **{f"val_{name}": value for name, value in val.items()}})
            if self.report is not None:
                self.report(epoch, dict(history[-1]))
            if self.steps >= self.total:
                break
            if self._out_of_time():
                return self._result("complete", f"time budget reached after {epoch} epochs",
                                    history)
        return self._result("complete", None, history)

    def _epoch(self) -> float:
        """One pass over a fresh permutation of the training split; the mean training loss."""
        x, y = self.task.train
        self.model.train()
        total, count = 0.0, 0
        for index in torch.randperm(len(y), generator=self.order).split(int(self.s["batch"])):
            if self.steps >= self.total or (count and self._out_of_time()):
                break
            loss = self._step(x[index], y[index])
            total, count = total + loss * len(index), count + len(index)
        return total / max(1, count)

    def _step(self, x: torch.Tensor, y: torch.Tensor) -> float:
        logits, target = _flat(self.model(x), y)  # (b·t, vocab) or (b, classes)
        loss = nn.functional.cross_entropy(logits, target,
                                           label_smoothing=float(self.s["label_smoothing"]))
        aux = _aux_loss(self.model, self.aux_methods)
        if aux is not None:
            loss = loss + aux
        value = loss.item()  # the step's one host sync
        if not math.isfinite(value):
            raise _Failed(f"loss is {value} (NaN/inf) at step {self.steps + 1}")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.s["grad_clip"] > 0:
            nn.utils.clip_grad_norm_(self.model.parameters(), float(self.s["grad_clip"]))
        self.optimizer.step()
        self.scheduler.step()
        self.steps += 1
        return value

    def _result(self, status: str, reason: str | None,
                history: list[dict[str, float]]) -> TrainResult:
        return TrainResult(status, reason, tuple(history), len(history), self.steps,
                           time.perf_counter() - self.start)


def _reason(error: Exception) -> str:
    """A failed trial's reason: out of memory named as such, else the exception's message."""
    message = str(error) or type(error).__name__
    if isinstance(error, RuntimeError | MemoryError) and (
            "out of memory" in message.lower() or isinstance(error, MemoryError)):
        return f"out of memory: {message}"
    return f"{type(error).__name__}: {message}"
