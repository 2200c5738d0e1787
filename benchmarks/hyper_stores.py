"""What the forward's non-temporal stores save, side by side in one process.

Run:  python benchmarks/hyper_stores.py [--repeats 9] [--cold-heap]

library/hyper_native.c writes the mixed streams (the width connection's H_res·h and the depth
connection's output: megabytes a site, read again only a layer later) with non-temporal
stores, which skip reading each line from memory before writing it. This script builds the
same kernels a second time with ordinary stores (`-DHYPER_PLAIN_STORES`) and runs both
libraries interleaved round by round (their order turning each round), each timed against the
plain-residual baseline of the same round; medians of per-round ratios:

1. one `Connection` around an MLP branch (d 256 → 1024 → 256; b 8 × t 256, n = 4), forward +
   backward, over `x + mlp(x)`;
2. the 12-layer hyper-connected transformer of benchmarks/hyper_transformer.py (24 sites)
   over the same network with plain residuals.
"""

from __future__ import annotations

import argparse
import ctypes
import platform
import statistics
import time
from collections.abc import Callable
from unittest import mock

import torch
from bench_args import parse_with_heap, positive, rotated
from hyper_site import MIXES, B, D, N, T, mlp
from hyper_transformer import MIXES as NETWORK_MIXES
from hyper_transformer import network, step_timer

from archc.library import hyper_native
from archc.library.hyper_connections_modules import Connection, depth_connection

VARIANTS = ("non-temporal stores", "ordinary stores")


def libraries() -> dict[str, ctypes.CDLL]:
    """The kernels as archc builds them, and built with ordinary stores."""
    built, said = hyper_native._library()
    if built is None:
        raise SystemExit(f"the native kernels are not built: {said}")
    plain = hyper_native._build([*hyper_native._compiler(), "-DHYPER_PLAIN_STORES"])
    return {VARIANTS[0]: built, VARIANTS[1]: ctypes.CDLL(str(plain))}


def measured(timers: dict[str, Callable[[], float]], base: Callable[[], float],
             kernels: dict[str, ctypes.CDLL], repeats: int) -> list[str]:
    ratios: dict[tuple[str, str], list[float]] = {}
    for round_ in range(repeats + 1):  # round 0 warms up
        seconds_base = base()
        for name, timer in timers.items():
            for which in rotated(list(VARIANTS), round_):
                with mock.patch.object(hyper_native, "_library",
                                       lambda lib=kernels[which]: (lib, "ready")):
                    seconds = timer()
                if round_:
                    ratios.setdefault((name, which), []).append(seconds / seconds_base)
    rows = ["| mix | " + " | ".join(VARIANTS) + " | saved |", "|---|---|---|---|"]
    for name in timers:
        streamed, plain = (statistics.median(ratios[(name, which)]) for which in VARIANTS)
        rows.append(f"| {name} | {streamed:.3f} | {plain:.3f} | {plain - streamed:+.3f} |")
    return rows


def site_timers() -> tuple[dict[str, Callable[[], float]], Callable[[], float]]:
    generator = torch.Generator().manual_seed(0)
    branch = mlp()
    x = torch.randn(B, T, D, generator=generator, requires_grad=True)
    h = torch.randn(B, T, N, D, generator=generator, requires_grad=True)
    g1 = torch.randn(B, T, D, generator=generator)
    gn = torch.randn(B, T, N, D, generator=generator)

    def timed(run: Callable[[], torch.Tensor], grad: torch.Tensor,
              leaves: list[torch.Tensor]) -> Callable[[], float]:
        def step() -> float:
            for leaf in leaves:
                leaf.grad = None
            start = time.perf_counter()
            run().backward(grad)
            return time.perf_counter() - start
        return step

    def around(site: Connection) -> Callable[[], torch.Tensor]:
        def run() -> torch.Tensor:
            layer_input, mixed, post = site(h)
            return depth_connection(mixed, post, branch(layer_input))
        return run

    sites = {name: Connection(mix, N, D, **hp) for name, (mix, hp) in MIXES.items()}
    timers = {name: timed(around(site), gn, [h, *branch.parameters(), *site.parameters()])
              for name, site in sites.items()}
    return timers, timed(lambda: x + branch(x), g1, [x, *branch.parameters()])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=positive, default=9)
    args, heap = parse_with_heap(parser)
    torch.set_num_threads(2)
    start = time.perf_counter()
    kernels = libraries()
    print(f"`python benchmarks/hyper_stores.py --repeats {args.repeats}`: torch "
          f"{torch.__version__}, {platform.processor() or platform.machine()}, 2 threads, "
          f"{heap}\n")
    print("One site around an MLP branch, forward + backward, × `x + mlp(x)`:\n")
    timers, base = site_timers()
    print("\n".join(measured(timers, base, kernels, 5 * args.repeats)))
    print("\n12-layer hyper-connected transformer (24 sites) × the plain network:\n")
    networks = {name: step_timer(network(spec, T), B, T) for name, spec in NETWORK_MIXES.items()}
    print("\n".join(measured(networks, step_timer(network(None, T), B, T), kernels,
                             args.repeats)))
    print(f"\nWhole run: {time.perf_counter() - start:.0f} s.")


if __name__ == "__main__":
    main()
