"""Hyper-connection sites trained through the native kernels against torch's path.

Run:  python benchmarks/hyper_native.py [--repeats 9] [--network-repeats N] [--native-only]
      [--bracket] [--threads 2] [--cold-heap]

library/hyper_native.c mixes the streams in one pass per connection and direction, where the
bmm path (library/hyper_fused.py) makes one pass per matrix product, and runs mHC's Sinkhorn
steps in one call; library/hyper_native_maps.c computes the per-token mixes' small maps
(projection → H_pre, H_res, H_post) and their backward in one call each, where torch runs them
as a graph of small ops, and hyper_native_site.c a per-token site's whole backward. Three paths
run in one process, interleaved round by round (paths and mixes in an order that turns each
round), each timed against its plain-residual baseline of the same round: torch's
(`hyper_native.usable` turned off), the native mixing with the maps' torch graph
(`hyper_site_native.supports` turned off), and everything native. Medians of per-round
ratios:

1. one `Connection` around an MLP branch (d 256 → 1024 → 256; b 8 × t 256, n = 4), forward +
   backward, over `x + mlp(x)` (issue 5's ≤ 1.25× target);
2. the 12-layer hyper-connected transformer of benchmarks/hyper_transformer.py (24 sites), over
   the same network with plain residuals (issue 5's ≤ 1.15× target); static hc also compiled
   without the fusion that hands each depth connection to the next site
   (`compiler.passes.fuse_depth_into_width`).

The last path's column also gives the quartiles of its per-round ratios: on a shared machine
one run's median moves by a few hundredths, and the quartiles say how far. `--native-only`
times that path alone, so `--network-repeats` can be three times larger in the same time.
`--bracket` times the baseline beside every mix, before and after (`table`).
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import statistics
import time
from collections.abc import Callable, Iterator

import torch
from bench_args import parse_with_heap, positive, rotated
from hyper_site import MIXES, B, D, N, T, mlp
from hyper_transformer import MIXES as NETWORK_MIXES
from hyper_transformer import network, step_timer

from archc.compiler import passes
from archc.library import hyper_native, hyper_site_native
from archc.library.hyper_connections_modules import Connection, depth_connection


@contextlib.contextmanager
def switched_off(module: object, name: str) -> Iterator[None]:
    """`module.name` answers False for the duration (the path it guards is not taken)."""
    kept = getattr(module, name)
    setattr(module, name, lambda *args: False)
    try:
        yield
    finally:
        setattr(module, name, kept)


PATHS: dict[str, Callable[[], contextlib.AbstractContextManager[None]]] = {
    "bmm path": lambda: switched_off(hyper_native, "usable"),
    "native mixing, torch maps": lambda: switched_off(hyper_site_native, "supports"),
    "native": contextlib.nullcontext,
}


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
    kept = passes.PASSES  # static hc again, each depth connection left to itself
    passes.PASSES = tuple(p for p in kept if p is not passes.fuse_depth_into_width)
    try:
        timers["hc (static), unfused sites"] = step_timer(network("hc", 256), 8, 256)
    finally:
        passes.PASSES = kept
    return timers


def table(timers: dict[str, Callable[[], float]], repeats: int, target: float,
          paths: list[str], bracket: bool = False) -> list[str]:
    """Per mix: median ratio to the baseline on each of `paths`, and the native path's middle
    half of rounds (quartiles: how far one run's median can be trusted on this machine).
    A round times the baseline once, before its mixes; with `bracket`, also after each mix,
    and each mix's ratio is over the mean of the baseline steps just before and after it --
    the machine's speed drifts over the seconds a network round takes, and one baseline step
    is itself one noisy sample."""
    ratios: dict[tuple[str, str], list[float]] = {}
    names = [name for name in timers if name != "baseline"]
    for round_ in range(repeats + 1):  # round 0 warms up
        for path in rotated(paths, round_):
            with PATHS[path]():
                base = timers["baseline"]()
                for name in rotated(names, round_):
                    seconds = timers[name]()
                    after = timers["baseline"]() if bracket else base
                    if round_:
                        ratios.setdefault((name, path), []).append(2 * seconds / (base + after))
                    base = after
    lines = ["| mix | " + " | ".join(f"{path} × baseline" for path in paths)
             + f" | {paths[-1]}: quartiles | ≤ {target}× |", "|---|" + "---|" * (len(paths) + 2)]
    for name in names:
        medians = [statistics.median(ratios[name, path]) for path in paths]
        last = ratios[name, paths[-1]]
        low, _, high = statistics.quantiles(last, n=4) if len(last) > 1 else (last[0],) * 3
        lines.append(f"| {name} | " + " | ".join(f"{m:.3f}" for m in medians)
                     + f" | {low:.3f}–{high:.3f}"
                     + f" | {'met' if medians[-1] <= target else '**not met**'} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=positive, default=9, help="rounds of the site table")
    parser.add_argument("--network-repeats", type=positive,
                        help="rounds of the network table (default: a third of --repeats)")
    parser.add_argument("--native-only", action="store_true",
                        help="time only the native path: more rounds in the same time")
    parser.add_argument("--bracket", action="store_true",
                        help="time the baseline after every mix too, each ratio over the mean "
                             "of the two beside it (narrower quartiles; twice the baseline steps)")
    parser.add_argument("--threads", type=positive, default=2)
    args, heap = parse_with_heap(parser)
    torch.set_num_threads(args.threads)
    paths = ["native"] if args.native_only else list(PATHS)
    network_repeats = args.network_repeats or max(args.repeats // 3, 1)
    start = time.perf_counter()
    flags = (f"--repeats {args.repeats} --network-repeats {network_repeats}"
             + (" --native-only" if args.native_only else "")
             + (" --bracket" if args.bracket else ""))
    print(f"`python benchmarks/hyper_native.py {flags} --threads {args.threads}`: torch "
          f"{torch.__version__}, {platform.machine()}, {args.threads} threads, native kernels "
          f"{hyper_native.status()}, {heap}, {time.strftime('%Y-%m-%d')}\n")
    print("One site around an MLP branch, forward + backward, × `x + mlp(x)`:\n")
    print("\n".join(table(site_timers(), args.repeats, 1.25, paths, args.bracket)))
    print("\n12-layer hyper-connected transformer (24 sites), forward + backward, × the same "
          "network with plain residuals:\n")
    print("\n".join(table(network_timers(), network_repeats, 1.15, paths, args.bracket)))
    print(f"\nWhole run: {time.perf_counter() - start:.0f} s.")


if __name__ == "__main__":
    main()
