"""What each one-pass kernel of a per-token site saves, side by side in one process.

Run:  python benchmarks/hyper_site_passes.py [--repeats 15] [--network] [--cold-heap]

For each per-token mix, one `Connection` around an MLP branch (as benchmarks/hyper_site.py:
d 256 → 1024 → 256, b 8 × t 256, n = 4), forward + backward, over `x + mlp(x)` of the same
round, in three variants run interleaved round by round:

- `now`: every native kernel archc uses;
- `GEMM + norm forward`: the projection's forward by torch, a matmul and then a norm (two reads
  of the streams), where `projection_forward` makes one;
- `three-kernel backward`: the stream mixing's, the maps' and the projection's backward as
  three passes over the site's tokens, where `site_backward` makes one;
- `forward apart`: dynamic hc's projection, maps and mixing as the projection's C pass, the
  maps' kernel (with torch's norm and tanh between) and the mixing's pass, where
  `site_forward` makes one (the other mixes take those three in either variant).

The figures are medians of per-round ratios; the variants' order turns round by round. With
`--network`, the 12-layer hyper-connected transformer (benchmarks/hyper_transformer.py, 24
sites) over the plain network, in `now`, `three-kernel backward`, `forward apart` and (the
projection's forward there is `depth_projection_forward` for every site but the first, so no
`GEMM + norm` column):

- `depth apart`: each site's streams formed by the previous site's depth connection as a
  pass of its own (`depth_connection`, and its backward after the site's), where a site
  handed that connection forms them in its projection's pass and differentiates them in its
  backward pass (`hyper_fused_site.fuses_depth`).
"""

from __future__ import annotations

import argparse
import contextlib
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

import archc.library.hyper_connections_modules as modules
from archc.library import hyper_fused_site, hyper_native, hyper_site_native
from archc.library.hyper_connections_modules import Connection, depth_connection

VARIANTS = ("now", "GEMM + norm forward", "three-kernel backward", "forward apart")
NETWORK_VARIANTS = ("now", "three-kernel backward", "depth apart", "forward apart")


def variant(name: str) -> contextlib.AbstractContextManager[object]:
    """archc as it is, or with one of its one-pass kernels swapped for the passes it replaces."""
    if name == "GEMM + norm forward":
        return mock.patch.object(hyper_fused_site, "_products_native", hyper_fused_site._products)
    if name == "three-kernel backward":
        return mock.patch.object(hyper_site_native, "fuses", lambda site: False)
    if name == "depth apart":
        return mock.patch.object(modules, "fuses_depth", lambda *tensors: False)
    if name == "forward apart":
        return mock.patch.object(hyper_site_native, "forwards_whole", lambda site: False)
    return contextlib.nullcontext()


def site_table(repeats: int) -> list[str]:
    generator = torch.Generator().manual_seed(0)
    branch = mlp()
    x = torch.randn(B, T, D, generator=generator, requires_grad=True)
    h = torch.randn(B, T, N, D, generator=generator, requires_grad=True)
    g1, gn = torch.randn(B, T, D, generator=generator), torch.randn(B, T, N, D,
                                                                    generator=generator)
    sites = {name: Connection(mix, N, D, **hp) for name, (mix, hp) in MIXES.items()
             if name != "hc static"}

    def timed(run: Callable[[], torch.Tensor], grad: torch.Tensor,
              leaves: list[torch.Tensor]) -> float:
        for leaf in leaves:
            leaf.grad = None
        start = time.perf_counter()
        run().backward(grad)
        return time.perf_counter() - start

    ratios: dict[tuple[str, str], list[float]] = {}
    for round_ in range(repeats + 1):  # round 0 warms up
        base = timed(lambda: x + branch(x), g1, [x, *branch.parameters()])
        for name, site in sites.items():
            def run(site: Connection = site) -> torch.Tensor:
                layer_input, mixed, post = site(h)
                return depth_connection(mixed, post, branch(layer_input))
            for which in rotated(list(VARIANTS), round_):
                with variant(which):
                    seconds = timed(run, gn, [h, *branch.parameters(), *site.parameters()])
                if round_:
                    ratios.setdefault((name, which), []).append(seconds / base)
    return _table(ratios, list(sites), VARIANTS)


def network_table(repeats: int) -> list[str]:
    plain = step_timer(network(None, T), B, T)
    names = [name for name, spec in NETWORK_MIXES.items() if spec != "hc"]  # the per-token
    timers = {name: step_timer(network(NETWORK_MIXES[name], T), B, T) for name in names}
    ratios: dict[tuple[str, str], list[float]] = {}
    for round_ in range(repeats + 1):
        base = plain()
        for name, timer in timers.items():
            for which in rotated(list(NETWORK_VARIANTS), round_):
                with variant(which):
                    seconds = timer()
                if round_:
                    ratios.setdefault((name, which), []).append(seconds / base)
    return _table(ratios, names, NETWORK_VARIANTS)


def _table(ratios: dict[tuple[str, str], list[float]], names: list[str],
           variants: tuple[str, ...]) -> list[str]:
    rows = ["| mix | " + " | ".join(variants) + " |", "|---|" + "---|" * len(variants)]
    for name in names:
        cells = [f"{statistics.median(ratios[(name, which)]):.3f}" for which in variants]
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=positive, default=15)
    parser.add_argument("--network", action="store_true",
                        help="also the 12-layer network, for the mixes the backward covers")
    args, heap = parse_with_heap(parser)
    torch.set_num_threads(2)
    start = time.perf_counter()
    print(f"`python benchmarks/hyper_site_passes.py --repeats {args.repeats}"
          f"{' --network' if args.network else ''}`: torch {torch.__version__}, "
          f"{platform.processor() or platform.machine()}, 2 threads, native kernels "
          f"{hyper_native.status()}, {heap}\n")
    print("One site around an MLP branch, forward + backward, × `x + mlp(x)`:\n")
    print("\n".join(site_table(args.repeats)))
    if args.network:
        print("\n12-layer hyper-connected transformer (24 sites) × the plain network:\n")
        print("\n".join(network_table(args.repeats)))
    print(f"\nWhole run: {time.perf_counter() - start:.0f} s.")


if __name__ == "__main__":
    main()
