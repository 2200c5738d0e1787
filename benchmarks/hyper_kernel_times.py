"""Where a hyper-connected network's step goes: each native kernel's time inside it.

Run:  python benchmarks/hyper_kernel_times.py [--mixes hc,kromhc] [--steps 5] [--cold-heap]

For each mix, the 12-layer hyper-connected transformer of benchmarks/hyper_transformer.py
(24 sites; b 8 × t 256, n = 4, d = 256) trains `--steps` forward + backward steps after three
warm-up steps, with a timer around every call into the native kernels (`hyper_native`), two
threads. The table gives each kernel's calls a step, its median milliseconds a call and its
share of the step; the plain-residual network's step is printed for scale only (ratios come
from benchmarks/hyper_native.py, which interleaves the networks). Inside a network
the streams come from memory, not cache (they are written and read a layer apart), so these
times are what each pass costs in training, unlike the same kernel timed alone.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any
from unittest import mock

import torch
from bench_args import parse_with_heap, positive
from hyper_transformer import MIXES, network, step_timer

from archc.library import hyper_native

B, T = 8, 256


def kernel_times(mix: str, steps: int) -> tuple[list[float], dict[str, list[float]]]:
    """The step times (s) and each kernel's call times (s) over `steps` timed steps."""
    run = step_timer(network(mix, T), B, T)
    calls: dict[str, list[float]] = defaultdict(list)
    kernel = hyper_native._kernel

    def timed_kernel(name: str, like: torch.Tensor) -> Callable[..., None]:
        found = kernel(name, like)

        def timed(*args: Any) -> None:
            start = time.perf_counter()
            found(*args)
            calls[name].append(time.perf_counter() - start)
        return timed

    with mock.patch.object(hyper_native, "_kernel", timed_kernel):
        for _ in range(3):
            run()
        calls.clear()
        return [run() for _ in range(steps)], calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mixes", default="hc,hc(dynamic = true),mhc,mhc_lite,kromhc,shc",
                        help="comma-separated mix specs, as hyper_transformer.MIXES writes them")
    parser.add_argument("--steps", type=positive, default=5)
    args, heap = parse_with_heap(parser)
    torch.set_num_threads(2)
    specs = [spec.strip() for spec in args.mixes.split(",") if spec.strip()]
    unknown = sorted(set(specs) - set(MIXES.values()))
    if unknown:
        parser.error(f"--mixes: unknown {', '.join(unknown)}; "
                     f"the mixes are {', '.join(MIXES.values())}")
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, 2 threads, "
          f"native kernels {hyper_native.status()}, {heap}; {args.steps} steps\n")
    plain = step_timer(network(None, T), B, T)
    for _ in range(3):
        plain()
    plain_step = statistics.median(plain() for _ in range(args.steps))
    print(f"plain residuals: {1e3 * plain_step:.0f} ms a step\n")
    for spec in specs:
        steps, calls = kernel_times(spec, args.steps)
        step = statistics.median(steps)
        total = sum(sum(times) for times in calls.values()) / args.steps
        print(f"### {spec}: {1e3 * step:.0f} ms a step, kernels {1e3 * total:.1f} ms\n")
        print("| kernel | calls a step | ms a call (median) | ms a step | share of step |")
        print("|---|---|---|---|---|")
        for name, times in sorted(calls.items(), key=lambda item: -sum(item[1])):
            per_step = sum(times) / args.steps
            print(f"| {name} | {len(times) // args.steps} | {1e3 * statistics.median(times):.2f} "
                  f"| {1e3 * per_step:.1f} | {per_step / step:.1%} |")
        print()


if __name__ == "__main__":
    main()
