"""Hyper-connection sites trained through the native kernels against torch's path.

Run:  python benchmarks/hyper_native.py [--repeats 9] [--threads 2]

library/hyper_native.c mixes the streams in one pass per connection and direction, where the
bmm path (library/hyper_fused.py) makes one pass per matrix product, and runs mHC's Sinkhorn
steps in one call. Both paths run in one process, interleaved round by round (torch's path by
turning `hyper_native.usable` off), each
timed against its plain-residual baseline of the same round; medians of per-round ratios:

1. one `Connection` around an MLP branch (d 256 → 1024 → 256; b 8 × t 256, n = 4), forward +
   backward, over `x + mlp(x)` (issue 5's ≤ 1.25× target);
2. the 12-layer hyper-connected transformer of benchmarks/hyper_transformer.py (24 sites), over
   the same network with plain residuals (issue 5's ≤ 1.15× target).
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import statistics
import time
from collections.abc import Callable, Iterator

import torch
from bench_args import positive
from hyper_site import MIXES, B, D, N, T, mlp
from hyper_transformer import MIXES as NETWORK_MIXES
from hyper_transformer import network, step_timer

from archc.library import hyper_native
from archc.library.hyper_connections_modules import Connection, depth_connection


@contextlib.contextmanager
def bmm_path() -> Iterator[None]:
    usable = hyper_native.usable
    hyper_native.usable = lambda *tensors: False  # type: ignore[assignment]
    try:
        yield
    finally:
        hyper_native.usable = usable  # type: ignore[assignment]


def timed(run: Callable[[], torch.Tensor], grad: torch.Tensor) -> Callable[[], float]:
    def step() -> float:
        start = time.perf_counter()
        run().backward(grad)
        return time.perf_counter() - start
    return step


def site_timers() -> dict[str, Callable[[], float]]:
    gen = torch.Generator().manual_seed(0)
    branch = mlp()
    x = torch.randn(B, T, D, generator=gen, requires_grad=True)
    h = torch.randn(B, T, N, D, generator=gen, requires_grad=True)
    g1, gn = torch.randn(B, T, D, generator=gen), torch.randn(B, T, N, D, generator=gen)

    def around(site: Connection) -> Callable[[], torch.Tensor]:
        def run() -> torch.Tensor:
            layer_input, mixed, post = site(h)
            return depth_connection(mixed, post, branch(layer_input))
        return run

    timers = {"baseline": timed(lambda: x + branch(x), g1)}
    for name, (mix, hp) in MIXES.items():
        timers[name] = timed(around(Connection(mix, N, D, **hp)), gn)
    return timers


def network_timers() -> dict[str, Callable[[], float]]:
    timers = {"baseline": step_timer(network(None, 256), 8, 256)}
    timers |= {name: step_timer(network(mix, 256), 8, 256) for name, mix in NETWORK_MIXES.items()}
    return timers


def table(timers: dict[str, Callable[[], float]], repeats: int, target: float) -> list[str]:
    """Per mix: median ratio to the baseline on the bmm path and on the native kernels."""
    ratios: dict[tuple[str, bool], list[float]] = {}
    for round_ in range(repeats + 1):  # round 0 warms up
        for native in (False, True):
            with contextlib.nullcontext() if native else bmm_path():
                base = timers["baseline"]()
                for name, run in timers.items():
                    if name != "baseline":
                        seconds = run()
                        if round_:
                            ratios.setdefault((name, native), []).append(seconds / base)
    lines = [f"| mix | bmm path × baseline | native × baseline | bmm / native | ≤ {target}× |",
             "|---|---|---|---|---|"]
    for name in timers:
        if name == "baseline":
            continue
        bmm, native = (statistics.median(ratios[name, flag]) for flag in (False, True))
        lines.append(f"| {name} | {bmm:.3f} | {native:.3f} | {bmm / native:.3f} | "
                     f"{'met' if native <= target else '**not met**'} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=positive, default=9)
    parser.add_argument("--threads", type=positive, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    print(f"`python benchmarks/hyper_native.py --repeats {args.repeats} --threads "
          f"{args.threads}`: torch {torch.__version__}, {platform.machine()}, {args.threads} "
          f"threads, native kernels {hyper_native.status()}, {time.strftime('%Y-%m-%d')}\n")
    print("One site around an MLP branch, forward + backward, × `x + mlp(x)`:\n")
    print("\n".join(table(site_timers(), args.repeats, 1.25)))
    print("\n12-layer hyper-connected transformer (24 sites), forward + backward, × the same "
          "network with plain residuals:\n")
    print("\n".join(table(network_timers(), max(args.repeats // 3, 1), 1.15)))
    print(f"\nWhole run: {time.perf_counter() - start:.0f} s.")


if __name__ == "__main__":
    main()
