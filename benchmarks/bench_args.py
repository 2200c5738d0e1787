"""Flag types and set-up the benchmark scripts share."""

from __future__ import annotations

import argparse
import os
import platform
import sys

WARM_HEAP = ("glibc.malloc.mmap_threshold=1073741824:"
             "glibc.malloc.trim_threshold=1073741824")
"""glibc settings that keep freed memory in the process instead of returning it to the kernel."""


def warm_heap(cold: bool) -> str:
    """Re-run this script with glibc keeping freed memory (unless `cold` or already so), and
    say which heap the run has. Why: glibc hands large freed blocks back to the kernel, and a
    benchmark that allocates the same tensors step after step then page-faults them back in
    each time — up to half of a small kernel's time, and a different share in every run
    (measured: a site's ratio moved by ±0.15 between runs, ±0.02 with a warm heap). The ratios
    are a warm heap's: through archc's own trainer the setting made no step faster
    (benchmarks/allocator.py), but in the 12-layer network on RESULTS.md's AMD machine the hyper
    rows ran 0.01-0.05 higher without it (the ninth pass)."""
    if cold or platform.libc_ver()[0] != "glibc":
        return "the default heap"
    if os.environ.get("GLIBC_TUNABLES") != WARM_HEAP:
        os.environ["GLIBC_TUNABLES"] = WARM_HEAP
        os.execv(sys.executable, [sys.executable, *sys.argv])
    return "a warm heap (GLIBC_TUNABLES keeps freed memory; --cold-heap runs without)"


def parse_with_heap(parser: argparse.ArgumentParser) -> tuple[argparse.Namespace, str]:
    """`parser`'s arguments with the `--cold-heap` flag every benchmark takes, and the heap the
    run has after `warm_heap` (which may re-run the script first)."""
    parser.add_argument("--cold-heap", action="store_true",
                        help="leave glibc's malloc as it is (see bench_args.warm_heap)")
    args = parser.parse_args()
    return args, warm_heap(args.cold_heap)


def positive(text: str) -> int:
    """An int flag that counts rounds, runs, repeats or threads: at least 1 (a median of no
    rounds is no figure), else argparse's usage error naming the flag."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is less than 1")
    return value


def rotated(items: list[str], round_: int) -> list[str]:
    """`items` starting at a different one each round: what runs right after another site (or
    the baseline) pays for what that one left in the caches, up to 0.06 of a ratio
    (benchmarks/hyper_site_passes.py measured it), so no mix or path may always run first."""
    shift = round_ % len(items)
    return items[shift:] + items[:shift]
