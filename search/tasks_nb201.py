"""The NAS-Bench-201 tasks: a point of examples/nb201.arch scored by table lookup, no training.

`nb201` is the proxy protocol on CIFAR-10 (the 12-epoch validation accuracy a real search
would see); the names `nb201[_cifar100|_imagenet16][_oracle]` pick the dataset and the oracle
protocol (the 200-epoch test accuracy itself). Either way the lookup also knows the cell's
200-epoch test accuracy, which `fit(…, test=True)` adds as `test_accuracy`; regret is measured
on it. The tables come from `search/nb201.py` (`data`, else `$ARCHC_NB201`, else the
development layout).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from archc.search.nb201 import DATASETS, PROTOCOLS, Nb201Tables, tables_path
from archc.search.tasks_base import Report, Task

if TYPE_CHECKING:
    from archc.search.trainer import TrainResult

__all__ = ["Nb201Task", "NB201_TASKS"]

CLASSES = {"cifar10": 10, "cifar100": 100, "imagenet16": 120}
"""Classes of each dataset of `nb201.DATASETS` (ImageNet16-120 keeps 120 of ImageNet's
classes)."""

_EMPTY = (torch.zeros(0, 3, 32, 32), torch.zeros(0, dtype=torch.int64))


@dataclass(frozen=True, eq=False)
class Nb201Task(Task):
    """A tabular task: `fit` looks the compiled point's cell up instead of training, so its
    splits are empty. `dataset` is cifar10, cifar100 or imagenet16; `protocol` proxy or
    oracle; `data` the tables' folder (None: `$ARCHC_NB201`, else the development layout)."""

    dataset: str = field(default="cifar10", kw_only=True)
    protocol: str = field(default="proxy", kw_only=True)
    data: str | None = field(default=None, kw_only=True)

    def fit(self, compiled: Any, settings: Mapping[str, Any], *, seed: int,
            budget_epochs: int | None = None, budget_seconds: float | None = None,
            threads: int | None = None, report: Report | None = None,
            test: bool = False, budget_steps: int | None = None) -> TrainResult:
        """The table's scores of `compiled.point` (or of `compiled`, a point itself): the
        protocol's `val_accuracy`, plus `test_accuracy` with `test=True`. Seeds, budgets and
        settings change nothing: the benchmark's figures are fixed. `report(1, metrics)` is
        called once, so pruners see the trial like any other."""
        from archc.search.trainer import TrainResult

        tables = Nb201Tables.load(self.data)
        point = getattr(compiled, "point", compiled)
        scores = tables.lookup(tables.cell(point), self.dataset, self.protocol)
        metrics = {"val_accuracy": scores["val_accuracy"]}
        if report is not None:
            report(1, dict(metrics))
        if test:
            metrics["test_accuracy"] = scores["test_accuracy"]
        return TrainResult("complete", None, (metrics,))


def _nb201(dataset: str, protocol: str) -> Callable[[str | None], Task]:
    def build(data: str | None = None) -> Task:
        tables_path(data)  # a missing table is reported when the task is chosen, not mid-search
        constants = {"classes": CLASSES[dataset], "channels": 3, "height": 32, "width": 32}
        return Nb201Task(_name(dataset, protocol), constants, {}, _EMPTY, _EMPTY, _EMPTY,
                         metrics=(("val_accuracy", "maximize"),),
                         dataset=dataset, protocol=protocol, data=data)
    return build


def _name(dataset: str, protocol: str) -> str:
    """nb201, then _<dataset> unless CIFAR-10, then _oracle for the oracle protocol."""
    return ("nb201" + ("" if dataset == "cifar10" else f"_{dataset}")
            + ("_oracle" if protocol == "oracle" else ""))


NB201_TASKS: dict[str, Callable[[str | None], Task]] = {
    _name(dataset, protocol): _nb201(dataset, protocol)
    for dataset in DATASETS for protocol in PROTOCOLS}
"""nb201, nb201_oracle, nb201_cifar100, nb201_cifar100_oracle, nb201_imagenet16 and
nb201_imagenet16_oracle."""
