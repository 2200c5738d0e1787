"""Searchers on NAS-Bench-201, offline: mean simple regret against the number of unique cells.

Run:  python benchmarks/searchers_nb201.py [--protocol oracle proxy] [--dataset cifar10 …]
          [--budgets 10 25 50 100 200] [--seeds 20] [--searchers random mcts …] [--workers 2]

Each run asks a searcher for points of examples/nb201.arch and tells it the table's score of the
cell (research/searchers.md §1.9 and the tables' README): under `oracle` the 200-epoch test
accuracy, under `proxy` the 12-epoch validation accuracy. Budgets count UNIQUE cells: a repeat
is told its cached score for free, but a run stops after `CAP`× the largest budget in asks (TPE
3×, as §1.9 did). The incumbent is the cell with the best signal so far; its simple regret is the
best 200-epoch test accuracy of any cell minus the incumbent's, in percentage points. Printed:
mean ± standard error over seeds, beside §1.9's own figures where it has them.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable, Sequence
from functools import partial
from multiprocessing import Pool
from pathlib import Path

from threadpoolctl import threadpool_limits

import archc
from archc.search import SEARCHERS, BaseSearcher
from archc.search.nb201 import simulate
from archc.search.smbo import SMBO

SPEC = Path(__file__).resolve().parent.parent / "examples" / "nb201.arch"
CAP = {"tpe": 3}
"""Asks allowed per unit of budget, by searcher (others: `DEFAULT_CAP`)."""
DEFAULT_CAP = 50

FACTORIES: dict[str, Callable[..., BaseSearcher]] = {
    **SEARCHERS,
    "smbo-ridge": partial(SMBO, surrogate="ridge"),
    "smbo-gp": partial(SMBO, surrogate="gp"),
}

PAPER: dict[tuple[str, str], dict[str, dict[int, float]]] = {
    # research/searchers.md §1.9, oracle CIFAR-10: 94.37 minus its mean incumbent accuracy
    ("oracle", "cifar10"): {
        "RS": {25: .93, 50: .69, 100: .53},
        "REA(P10,S3)": {25: .76, 50: .39, 100: .16},
        "REA(P30,S10)": {25: .90, 50: .46, 100: .08},
        "LS(init10)": {25: .48, 50: .18, 100: .05},
        "MCTS(c=0.5)": {25: .78, 50: .63, 100: .49},
        "MCTS-rank": {25: .78, 50: .53, 100: .37},
        "SMBO-ridge": {25: .66, 50: .38, 100: .22},
        "SMBO-ridge+mut": {25: .59, 50: .34, 100: .16},
        "TPE (indep.)": {25: .55, 50: .30, 100: .11},
        "TPE multivariate": {25: .65, 50: .23, 100: .02},
    },
}
"""§1.9's figures for the same protocol and dataset (its other tables average three datasets)."""


def run_one(name: str, seed: int, dataset: str, protocol: str, budgets: Sequence[int]
            ) -> list[float]:
    """One seeded search; the incumbent's regret (points) at each budget."""
    searcher = FACTORIES[name](archc.load(SPEC), seed=seed)
    return simulate(searcher, budgets, dataset, protocol, CAP.get(name, DEFAULT_CAP))


def _job(args: tuple[str, int, str, str, tuple[int, ...]]) -> tuple[str, list[float], float]:
    start = time.perf_counter()
    regrets = run_one(*args)
    return args[0], regrets, time.perf_counter() - start


def _one_thread() -> None:
    """Small matrices: a threaded BLAS only fights the other workers for the cores."""
    threadpool_limits(1)


def table(names: Sequence[str], seeds: int, dataset: str, protocol: str,
          budgets: tuple[int, ...], workers: int) -> list[str]:
    """The markdown rows of one (protocol, dataset): each searcher's mean ± sem per budget."""
    jobs = [(n, s, dataset, protocol, budgets) for n in names for s in range(seeds)]
    with Pool(workers, initializer=_one_thread) as pool:
        done = pool.map(_job, jobs, chunksize=1)
    head = [f"| searcher | {' | '.join(f'N={b}' for b in budgets)} | s/run |",
            "|---|" + "---|" * (len(budgets) + 1)]
    rows = []
    for name in names:
        runs = [r for n, r, _ in done if n == name]
        seconds = statistics.mean(t for n, _, t in done if n == name)
        cells = []
        for i in range(len(budgets)):
            values = [r[i] for r in runs]
            sem = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else 0
            cells.append(f"{statistics.mean(values):.2f}±{sem:.2f}")
        rows.append(f"| {name} | {' | '.join(cells)} | {seconds:.2f} |")
    for name, figures in PAPER.get((protocol, dataset), {}).items():
        cells = [f"{figures[b]:.2f}" if b in figures else "" for b in budgets]
        rows.append(f"| §1.9 {name} | {' | '.join(cells)} | |")
    return head + rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protocol", nargs="+", default=["oracle", "proxy"])
    parser.add_argument("--dataset", nargs="+", default=["cifar10"])
    parser.add_argument("--budgets", nargs="+", type=int, default=[10, 25, 50, 100, 200])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--searchers", nargs="+",
                        default=["random", "mcts", "smbo", "evolution", "local", "tpe"])
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    unknown = sorted(set(args.searchers) - set(FACTORIES))
    if unknown:
        parser.error(f"unknown searcher {unknown[0]} (known: {', '.join(sorted(FACTORIES))})")
    budgets = tuple(sorted(args.budgets))
    for protocol in args.protocol:
        for dataset in args.dataset:
            start = time.perf_counter()
            print(f"\n{protocol} / {dataset}: mean simple regret (points) ± sem, "
                  f"{args.seeds} seeds")
            for line in table(args.searchers, args.seeds, dataset, protocol, budgets,
                              args.workers):
                print(line)
            print(f"({time.perf_counter() - start:.0f} s wall)")


if __name__ == "__main__":
    main()
