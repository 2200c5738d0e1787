"""What one ask + tell costs each searcher after a long history (issue 4: ≤ 5 ms at 1,000).

Run:  python benchmarks/searchers_speed.py [--history 1000] [--rounds 30] [--spaces nb201 …]

For each space, every searcher is restored from the same history of `--history` random points
with synthetic scores (a fixed pseudo-random worth per decision value, summed), then the
searchers take turns, one timed ask + tell each per round, for `--rounds` rounds (interleaved,
so machine noise hits all alike). Reported: the median CPU time of the process in ms (what the
searcher costs; a loaded machine inflates wall time by descheduling, not CPU time), the median
wall time in brackets, and the CPU median as a multiple of random search's. Optuna's TPE is
slow per ask and gets `--tpe-rounds`. BLAS is held to one thread, as a search worker beside
training would run it.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
import zlib
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path

from bench_args import positive
from threadpoolctl import threadpool_limits

import archc
from archc.dsl.domain import Scalar
from archc.search import SEARCHERS as REGISTERED
from archc.search import BaseSearcher
from archc.search._optuna import optuna
from archc.search.smbo import SMBO

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SPACES = {"nb201": "nb201.arch", "digits_cnn": "digits_cnn.arch", "hc_lm": "hc_lm.arch"}
SEARCHERS: dict[str, Callable[..., BaseSearcher]] = {
    **REGISTERED, "smbo (ridge)": partial(SMBO, surrogate="ridge")}
"""Every searcher `--searcher` names (`smbo` with its default Gaussian process), and SMBO with
the ridge surrogate."""


def worth(point: Mapping[str, Scalar]) -> float:
    """A synthetic score: a fixed pseudo-random worth in [0, 1) per decision value, summed."""
    return sum(zlib.crc32(f"{k}={v!r}".encode()) % 1000 / 1000 for k, v in point.items())


def measure(space: archc.Space, history: int, rounds: int, tpe_rounds: int
            ) -> dict[str, list[tuple[float, float]]]:
    """(CPU, wall) seconds of each timed ask + tell, per searcher."""
    rng = random.Random(0)
    told = [(p, worth(p)) for p in (space.sample(rng) for _ in range(history))]
    searchers = {}
    for name, make in SEARCHERS.items():
        searcher = make(space, seed=0)
        searcher.restore(told)
        searchers[name] = searcher
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in searchers}
    for turn in range(rounds):
        for name, searcher in searchers.items():
            if name.startswith("tpe") and turn >= tpe_rounds:
                continue
            cpu, wall = time.process_time(), time.perf_counter()
            point = searcher.ask()
            searcher.tell(point, worth(point))
            times[name].append((time.process_time() - cpu, time.perf_counter() - wall))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history", type=positive, default=1000)
    parser.add_argument("--rounds", type=positive, default=30)
    parser.add_argument("--tpe-rounds", type=positive, default=5)
    parser.add_argument("--spaces", nargs="+", default=["nb201", "digits_cnn"],
                        choices=sorted(SPACES))
    args = parser.parse_args()
    threadpool_limits(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(f"ask + tell after {args.history} told points: median CPU ms (median wall ms), "
          "CPU ×random")
    print("| searcher | " + " | ".join(args.spaces) + " |")
    print("|---|" + "---|" * len(args.spaces))
    results = {}
    for name in args.spaces:
        space = archc.load(EXAMPLES / SPACES[name])
        results[name] = measure(space, args.history, args.rounds, args.tpe_rounds)
    for searcher in SEARCHERS:
        cells = []
        for name in args.spaces:
            cpu = statistics.median(c for c, _ in results[name][searcher])
            wall = statistics.median(w for _, w in results[name][searcher])
            ratio = cpu / statistics.median(c for c, _ in results[name]["random"])
            cells.append(f"{1e3 * cpu:.2f} ({1e3 * wall:.2f}), ×{ratio:.0f}")
        print(f"| {searcher} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
