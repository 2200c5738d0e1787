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
    "smbo-ridge": partial(SMBO, surrogate="ridge"),  # SEARCHERS' smbo is the GP
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
PAPER[("oracle", "average")] = {  # §1.9's regret table, averaged over the three datasets
    "RS": {10: 2.95, 25: 2.21, 50: 1.73, 100: 1.39, 200: 1.15},
    "REA(P10,S3)": {10: 3.10, 25: 1.91, 50: 1.06, 100: .53, 200: .27},
    "REA(P20,S5)": {10: 2.82, 25: 2.07, 50: 1.13, 100: .38, 200: .11},
    "REA(P30,S10)": {10: 2.95, 25: 2.23, 50: 1.20, 100: .33, 200: .05},
    "LS(init10)": {10: 2.96, 25: 1.25, 50: .62, 100: .23, 200: .10},
    "MCTS(c=0.5)": {10: 2.94, 25: 2.00, 50: 1.60, 100: 1.24, 200: .97},
    "MCTS-rank": {10: 2.77, 25: 2.02, 50: 1.50, 100: 1.05, 200: .58},
    "SMBO-ridge": {10: 2.41, 25: 1.50, 50: .98, 100: .62, 200: .33},
    "SMBO-ridge+mut": {10: 2.92, 25: 1.34, 50: .77, 100: .38, 200: .11},
    "TPE (indep.)": {10: 2.83, 25: 1.44, 50: .85, 100: .45, 200: .20},
    "TPE multivariate": {10: 2.92, 25: 1.30, 50: .65, 100: .26, 200: .10},
}
PAPER[("proxy", "average")] = {
    "RS": {25: 3.00, 50: 2.30, 100: 1.83, 200: 1.55},
    "REA(P10,S3)": {25: 2.73, 50: 1.77, 100: 1.27, 200: .89},
    "REA(P20,S5)": {25: 2.89, 50: 1.66, 100: 1.12, 200: .81},
    "REA(P30,S10)": {25: 2.94, 50: 1.74, 100: .93, 200: .82},
    "LS(init10)": {25: 2.02, 50: 1.32, 100: .91, 200: .75},
    "MCTS(c=0.5)": {25: 2.84, 50: 2.17, 100: 1.75, 200: 1.39},
    "MCTS-rank": {25: 2.67, 50: 1.98, 100: 1.50, 200: 1.18},
    "SMBO-ridge": {25: 2.11, 50: 1.33, 100: .95, 200: .74},
    "SMBO-ridge+mut": {25: 1.90, 50: 1.35, 100: 1.05, 200: .95},
    "TPE (indep.)": {25: 2.34, 50: 1.54, 100: .99, 200: .75},
    "TPE multivariate": {25: 1.88, 50: 1.16, 100: .84, 200: .89},
}
"""§1.9's figures for the same protocol and dataset, or for the mean of the three datasets."""


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


Runs = dict[str, list[list[float]]]
"""Searcher → one list of regrets (one per budget) per seed, in seed order."""


def run(names: Sequence[str], seeds: int, dataset: str, protocol: str,
        budgets: tuple[int, ...], workers: int) -> tuple[Runs, dict[str, float]]:
    """Every searcher on seeds 0 … seeds-1; the runs, and each searcher's seconds per run."""
    jobs = [(n, s, dataset, protocol, budgets) for n in names for s in range(seeds)]
    with Pool(workers, initializer=_one_thread) as pool:
        done = pool.map(_job, jobs, chunksize=1)
    runs = {name: [r for n, r, _ in done if n == name] for name in names}
    seconds = {name: statistics.mean(t for n, _, t in done if n == name) for name in names}
    return runs, seconds


def rows(runs: Runs, budgets: tuple[int, ...], seconds: dict[str, float] | None,
         paper: dict[str, dict[int, float]]) -> list[str]:
    """Markdown: each searcher's mean ± sem per budget, then §1.9's figures."""
    head = [f"| searcher | {' | '.join(f'N={b}' for b in budgets)} | s/run |",
            "|---|" + "---|" * (len(budgets) + 1)]
    out = []
    for name, per_seed in runs.items():
        cells = []
        for values in zip(*per_seed, strict=True):
            sem = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else 0
            cells.append(f"{statistics.mean(values):.2f}±{sem:.2f}")
        cost = f"{seconds[name]:.2f}" if seconds else ""
        out.append(f"| {name} | {' | '.join(cells)} | {cost} |")
    for name, figures in paper.items():
        cells = [f"{figures[b]:.2f}" if b in figures else "" for b in budgets]
        out.append(f"| §1.9 {name} | {' | '.join(cells)} | |")
    return head + out


def averaged(per_dataset: list[Runs]) -> Runs:
    """Each seed's regret averaged over datasets (so the sem is over seeds)."""
    return {name: [[statistics.mean(v) for v in zip(*seed_runs, strict=True)]
                   for seed_runs in zip(*(runs[name] for runs in per_dataset), strict=True)]
            for name in per_dataset[0]}


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
        per_dataset = []
        for dataset in args.dataset:
            start = time.perf_counter()
            runs, seconds = run(args.searchers, args.seeds, dataset, protocol, budgets,
                                args.workers)
            per_dataset.append(runs)
            print(f"\n{protocol} / {dataset}: mean simple regret (points) ± sem, "
                  f"{args.seeds} seeds ({time.perf_counter() - start:.0f} s wall)")
            print("\n".join(rows(runs, budgets, seconds, PAPER.get((protocol, dataset), {}))))
        if len(per_dataset) == 3:
            print(f"\n{protocol} / mean of the three datasets: mean simple regret (points) ± sem "
                  f"over {args.seeds} seeds")
            print("\n".join(rows(averaged(per_dataset), budgets, None,
                                 PAPER.get((protocol, "average"), {}))))


if __name__ == "__main__":
    main()
