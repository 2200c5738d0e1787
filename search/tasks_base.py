"""The task protocol: what a task gives the search (data, constants, metrics) and how it scores.

A `Task` holds fixed train/val/test splits and the constants a spec reads (`task.classes`);
`fit` turns a compiled point into a `TrainResult`. The default `fit` trains with the trainer;
a task that scores points another way (a tabular benchmark looks them up) overrides `fit` and
nothing else. `metrics` says what `fit` reports and which way is better, so a search can choose
its objectives among them.

The splits and helpers here are shared by every built-in task (`search/tasks*.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from archc.errors import ArchError

if TYPE_CHECKING:
    from archc.search.trainer import TrainResult

__all__ = ["Task", "Split", "Report", "CLASSIFICATION_METRICS", "LM_METRICS", "stratified",
           "tensors", "no_data"]

Split = tuple[torch.Tensor, torch.Tensor]
"""(inputs, targets), batch axis first: float images/signals or int64 tokens as inputs; int64
class labels (classification) or int64 next tokens of the same shape as the input (lm)."""

Report = Callable[[int, dict[str, float]], None]
"""`report(epoch, metrics)`, called after each epoch; what it raises stops the run."""

CLASSIFICATION_METRICS = (("val_accuracy", "maximize"), ("val_loss", "minimize"),
                          ("train_loss", "minimize"))
LM_METRICS = (("val_loss", "minimize"), ("val_bpc", "minimize"), ("val_accuracy", "maximize"),
              ("train_loss", "minimize"))


@dataclass(frozen=True, eq=False)
class Task:
    """A dataset, what the spec may read of it, and how a compiled point is scored.

    `constants` feed `task.<name>` (e.g. `{"classes": 10}`); `dims` bind symbolic input sizes
    (`t` of `int[t]`; empty when the input is fully concrete); `loss` names what the trainer
    minimises: "classification" (cross-entropy of (b, classes) logits against integer labels)
    or "lm" (next-token cross-entropy of (b, t, vocab) logits at every position). `metrics`
    lists what `fit` reports with its direction, "maximize" or "minimize".
    """

    name: str
    constants: dict[str, int] = field(repr=False)
    dims: dict[str, int] = field(repr=False)
    train: Split = field(repr=False)
    val: Split = field(repr=False)
    test: Split = field(repr=False)
    loss: str = "classification"
    metrics: tuple[tuple[str, str], ...] = CLASSIFICATION_METRICS

    def split(self, name: str) -> Split:
        """The split called `name` ("train", "val" or "test")."""
        if name not in ("train", "val", "test"):
            raise ArchError(f"unknown split '{name}'", hint="use train, val or test")
        return getattr(self, name)

    def fit(self, compiled: Any, settings: Mapping[str, Any], *, seed: int,
            budget_epochs: int | None = None, budget_seconds: float | None = None,
            threads: int | None = None, report: Report | None = None,
            test: bool = False, budget_steps: int | None = None) -> TrainResult:
        """Score `compiled` (a `Compiled` or a plain module): train it on `train`, report
        `val` after each epoch and, with `test=True` (only `archc evaluate` asks), add the
        test split's metrics (test_accuracy, test_loss, …) to the final ones. Budgets:
        `budget_epochs`, `budget_steps` (optimizer steps) and `budget_seconds`, as in
        `trainer.train`."""
        from archc.search.trainer import train

        return train(compiled, self, settings, seed=seed, budget_epochs=budget_epochs,
                     budget_seconds=budget_seconds, threads=threads, report=report, test=test,
                     budget_steps=budget_steps)


def no_data(name: str, data: str | None) -> None:
    """Refuse a data path given to a task that reads none."""
    if data is not None:
        raise ArchError(f"task '{name}' reads no data path (got '{data}')",
                        hint="only charlm and the nb201 tasks take one")


def stratified(labels: np.ndarray, fractions: tuple[float, ...], seed: int
               ) -> list[np.ndarray]:
    """Indices of each part, every class divided in the same proportions (sorted, disjoint)."""
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in fractions]
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        bounds = np.round(np.cumsum(fractions)[:-1] * len(members)).astype(int)
        for part, chunk in zip(parts, np.split(members, bounds), strict=True):
            part.append(chunk)
    return [np.sort(np.concatenate(p)) for p in parts]


def tensors(x: np.ndarray, y: np.ndarray, index: np.ndarray | slice,
            dtype: torch.dtype = torch.float32) -> Split:
    """The rows `index` of inputs `x` (as `dtype`) and targets `y` (as int64)."""
    return (torch.as_tensor(x[index], dtype=dtype), torch.as_tensor(y[index], dtype=torch.int64))
