"""NAS-Bench-201 offline: the published accuracies of all 15,625 cells, looked up by point.

NAS-Bench-201 (Dong & Yang, ICLR 2020; NATS-Bench topology space) trained every cell of a fixed
network; its tables turn a search over examples/nb201.arch into lookups, so searchers can be
compared on a real benchmark in seconds (benchmarks/searchers_nb201.py) and the `nb201` task can
"train" a point instantly. The two CSVs live outside the repository (README of the folder:
../shared/benchmarks/nb201 in the development layout, or wherever `$ARCHC_NB201` points).

Protocols (the folder's README): `proxy` scores a cell by its 12-epoch validation accuracy (the
NATS "hp=12" signal a real search would see); `oracle` by its 200-epoch test accuracy. Either
way `test_accuracy` is the 200-epoch test accuracy, the figure regret is measured on.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from archc.errors import ArchError

if TYPE_CHECKING:
    from archc.search.base import BaseSearcher

__all__ = ["Nb201Tables", "tables_path", "simulate", "KEYS", "OPS", "DATASETS", "PROTOCOLS"]

KEYS = ("nb_cell.n1.op", "nb_cell.n2.op", "nb_cell.n2.op#2",  # (1←0); (2←0), (2←1)
        "nb_cell.return.op", "nb_cell.return.op#2", "nb_cell.return.op#3")  # (3←0, 1, 2)
"""The decision paths of examples/nb201.arch, in the benchmark's edge order."""

OPS = {"none": "none", "skip": "skip_connect", "conv1": "nor_conv_1x1",
       "conv3": "nor_conv_3x3", "pool": "avg_pool_3x3"}
"""archc's label of an edge operation → the benchmark's name of it."""

EDGES = ((0,), (0, 1), (0, 1, 2))
"""Each cell node's input nodes, in the benchmark's edge order."""

FILES = ("nb201_200epoch.csv", "nb201_12epoch.csv")

DATASETS = {  # name → (200-epoch test column, 12-epoch validation column)
    "cifar10": ("CIFAR10TestAccuracy200Epochs", "cifar10-val"),
    "cifar100": ("CIFAR100TestAccuracy200Epochs", "cifar100-val"),
    "imagenet16": ("ImageNetTestAccuracy200Epochs", "imagenet-val"),
}
PROTOCOLS = ("proxy", "oracle")

_LOADED: dict[Path, Nb201Tables] = {}


def tables_path(path: str | Path | None = None) -> Path:
    """The folder of the two CSVs: `path`, else `$ARCHC_NB201`, else ../shared/benchmarks/nb201
    beside the repository root (the development layout). A missing folder or file is an
    `ArchError` that names the path tried and where the tables come from."""
    if path is not None:
        folder, how = Path(path), "the given path"
    elif os.environ.get("ARCHC_NB201"):
        folder, how = Path(os.environ["ARCHC_NB201"]), "$ARCHC_NB201"
    else:
        root = Path(__file__).resolve().parent.parent
        folder, how = root.parent / "shared" / "benchmarks" / "nb201", "the default location"
    missing = [name for name in FILES if not (folder / name).is_file()]
    if missing:
        raise ArchError(
            f"NAS-Bench-201 tables not found: {folder} ({how}) lacks {', '.join(missing)}",
            hint="get the tables of the NATS-Bench / NAS-Bench-201 release (the folder's README "
                 f"lists the two CSVs, {FILES[0]} and {FILES[1]}) and point $ARCHC_NB201 at "
                 "their folder")
    return folder


class Nb201Tables:
    """Accuracies of every cell, as fractions in [0, 1], indexed by the benchmark's
    architecture string (`|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`)."""

    def __init__(self, cells: list[str], test: dict[str, np.ndarray],
                 proxy: dict[str, np.ndarray]) -> None:
        self.cells = cells
        self.index = {cell: i for i, cell in enumerate(cells)}
        self.test = test  # dataset → 200-epoch test accuracy per row
        self.proxy = proxy  # dataset → 12-epoch validation accuracy per row

    @classmethod
    def load(cls, path: str | Path | None = None) -> Nb201Tables:
        """The tables of `tables_path(path)`, read once per folder."""
        folder = tables_path(path).resolve()
        if folder not in _LOADED:
            _LOADED[folder] = cls._read(folder)
        return _LOADED[folder]

    @classmethod
    def _read(cls, folder: Path) -> Nb201Tables:
        with (folder / FILES[0]).open(newline="") as f:
            final = list(csv.DictReader(f))
        with (folder / FILES[1]).open(newline="") as f:
            early = list(csv.DictReader(f))
        cells = [row["ArchitectureString"] for row in final]
        if len(early) != len(final) or any(
                row["cellstr"] != cell for row, cell in zip(early, cells, strict=True)):
            raise ArchError(f"NAS-Bench-201 tables in {folder} do not match row for row",
                            hint="both CSVs must list the cells in architecture-index order")
        test = {name: np.array([float(r[cols[0]]) / 100 for r in final])
                for name, cols in DATASETS.items()}
        proxy = {name: np.array([float(r[cols[1]]) / 100 for r in early])
                 for name, cols in DATASETS.items()}
        return cls(cells, test, proxy)

    def cell(self, point: Mapping[str, Any]) -> str:
        """The benchmark's key of a point of examples/nb201.arch."""
        try:
            ops = iter([OPS[str(point[key])] for key in KEYS])
        except KeyError as missing:
            raise ArchError(f"not a point of examples/nb201.arch: {missing} is missing or not "
                            f"one of {', '.join(OPS)}",
                            hint=f"an NB201 point has the six decisions {', '.join(KEYS)}"
                            ) from None
        return "+".join("|" + "|".join(f"{next(ops)}~{i}" for i in ins) + "|" for ins in EDGES)

    def row(self, cell: str) -> int:
        """The architecture index of a cell string."""
        try:
            return self.index[cell]
        except KeyError:
            raise ArchError(f"'{cell}' is not a NAS-Bench-201 cell") from None

    def lookup(self, cell: str, dataset: str = "cifar10", protocol: str = "proxy"
               ) -> dict[str, float]:
        """{"val_accuracy", "test_accuracy"} of a cell: the search signal of `protocol` and the
        200-epoch test accuracy, as fractions."""
        i = self.row(cell)
        return {"val_accuracy": float(self.signal(dataset, protocol)[i]),
                "test_accuracy": float(self.test[_dataset(dataset)][i])}

    def signal(self, dataset: str = "cifar10", protocol: str = "proxy") -> np.ndarray:
        """The search signal of every row under `protocol` (what a searcher is told)."""
        if protocol not in PROTOCOLS:
            raise ArchError(f"unknown NAS-Bench-201 protocol '{protocol}'",
                            hint=f"use one of {', '.join(PROTOCOLS)}")
        table = self.proxy if protocol == "proxy" else self.test
        return table[_dataset(dataset)]

    def best(self, dataset: str = "cifar10") -> float:
        """The best 200-epoch test accuracy of any cell (regret is measured from it)."""
        return float(self.test[_dataset(dataset)].max())


def _dataset(name: str) -> str:
    if name not in DATASETS:
        raise ArchError(f"unknown NAS-Bench-201 dataset '{name}'",
                        hint=f"use one of {', '.join(DATASETS)} (imagenet16 is ImageNet16-120)")
    return name


def simulate(searcher: BaseSearcher, budgets: Sequence[int], dataset: str = "cifar10",
             protocol: str = "oracle", cap: int = 50, tables: Nb201Tables | None = None
             ) -> list[float]:
    """Run `searcher` (over examples/nb201.arch) on the tables; its simple regret, in
    percentage points, after each of the increasing `budgets` of DISTINCT cells.

    A repeated cell is told its known score again for free; the run stops after `cap` ×
    `budgets[-1]` asks, and budgets not reached then keep the last incumbent. The incumbent is
    the cell of best signal so far; regret is `best(dataset)` minus its 200-epoch test accuracy
    (the protocols of the tables' README and research/searchers.md §1.9)."""
    tables = tables or Nb201Tables.load()
    signal, test = tables.signal(dataset, protocol), tables.test[dataset]
    best = tables.best(dataset)
    seen: dict[int, float] = {}
    incumbent, asks = -1, 0
    regrets: list[float] = []
    while len(regrets) < len(budgets) and asks < cap * budgets[-1]:
        point = searcher.ask()
        asks += 1
        row = tables.row(tables.cell(point))
        if row not in seen:
            seen[row] = float(signal[row])
            if incumbent < 0 or seen[row] > seen[incumbent]:
                incumbent = row
            if len(seen) == budgets[len(regrets)]:
                regrets.append(100 * (best - float(test[incumbent])))
        searcher.tell(point, seen[row])
    last = 100 * (best - float(test[incumbent]))
    return regrets + [last] * (len(budgets) - len(regrets))
