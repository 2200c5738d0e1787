"""How fast a per-token site's projection runs, against the machine's own GEMM rate, and what
that makes the floor of the per-token mixes' overhead in the 12-layer network.

Run:  python benchmarks/projection_rate.py [--repeats 15] [--threads 2] [--cold-heap]

The per-token mixes (dynamic hc, mhc, mhc_lite, kromhc, shc) project each token's streams,
vec h (n·d = 1,024 numbers), onto c logits: 3·c·n·d multiply-adds per token and site (the
forward, ∂h and ∂W), on top of everything static hc does. The script times, at 2,048 tokens:

1. the machine's GEMM rate: torch.mm of two 2,048 × 2,048 float32 matrices (MKL near its best
   on Intel; on the AMD EPYC of RESULTS.md's ninth pass it reaches about half the FMA peak,
   so there the shares below read high);
2. per mix, with its own c: the forward GEMM by torch (`vec h · W`), the forward by archc's C
   pass (`hyper_native_projection.c`: h·W with Σh² for the norm, W packed on each call, as
   the site calls it) and the backward by the C pass (∂h += ∂out·Wᵀ + coef·h and
   ∂W = hᵀ·∂out);
3. the plain-residual 12-layer network's forward + backward (benchmarks/hyper_transformer.py),

and prints each projection's rate and share of (1), and its cost over the network's 24 sites
as a share of (3) at the rate measured and at the GEMM rate of (1). Issue 5's network target
is ≤ 1.15× the plain network, and static hc, which has no projection, already takes ~1.12×.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable

import torch
from bench_args import parse_with_heap, positive
from hyper_site import MIXES, D, N
from hyper_transformer import network, step_timer

from archc.library import hyper_fused_site, hyper_native
from archc.library.hyper_connections_modules import Connection

TOKENS = 2048  # b 8 × t 256, as the site and network benchmarks
SITES = 24     # the 12-layer network's hyper-connection sites


def median_seconds(run: Callable[[], object], repeats: int) -> float:
    run()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def gemm_rate(repeats: int) -> float:
    """Multiply-adds per second of a large square float32 GEMM."""
    generator = torch.Generator().manual_seed(0)
    a, b = (torch.randn(2048, 2048, generator=generator) for _ in range(2))
    return 2048 ** 3 / median_seconds(lambda: a @ b, repeats)


def projection_times(site: Connection, repeats: int) -> tuple[int, float, float, float]:
    """(c, torch forward, C forward, C backward seconds) of the site's projection at TOKENS
    tokens."""
    generator = torch.Generator().manual_seed(1)
    proj = site.proj.detach()
    c = proj.shape[1]
    flat = torch.randn(TOKENS, N, D, generator=generator)
    rows = flat.view(TOKENS, N * D)
    scaled = torch.randn(TOKENS, c, generator=generator)
    coef = torch.randn(TOKENS, 1, generator=generator)
    grad_h = torch.randn(TOKENS, N, D, generator=generator)
    forward = median_seconds(lambda: rows @ proj, repeats)
    native = median_seconds(lambda: hyper_fused_site._products_native(rows, proj), repeats)
    backward = median_seconds(lambda: hyper_fused_site._project_backward(
        "rms", grad_h, (scaled, coef), flat, proj), repeats)
    return c, forward, native, backward


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=positive, default=15)
    parser.add_argument("--threads", type=positive, default=2)
    args, heap = parse_with_heap(parser)
    torch.set_num_threads(args.threads)
    if not hyper_native.usable(torch.zeros(())):
        raise SystemExit(f"projection_rate times archc's C passes: {hyper_native.status()}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{platform.processor() or platform.machine()}; {TOKENS} tokens, n={N}, d={D}; "
          f"native kernels: {hyper_native.status()}; {heap}\n")
    peak = gemm_rate(args.repeats)
    plain = median_seconds(step_timer(network(None, 256), 8, 256), max(3, args.repeats // 3))
    print(f"GEMM rate (2,048³ float32 torch.mm): {peak / 1e9:.0f} G multiply-adds/s; plain "
          f"12-layer network, forward + backward: {plain * 1e3:.0f} ms\n")
    print("| mix | c | torch forward GEMM ms (G/s, share of GEMM rate) | C forward with Σh² "
          "| C backward | 24 sites (C passes) / plain network | at the GEMM rate |")
    print("|---|---|---|---|---|---|---|")
    for name, (mix, hp) in MIXES.items():
        if mix == "hc":
            continue  # static hc has no projection; dynamic hc's is per stream (d → n + 2)
        c, forward, native, backward = projection_times(Connection(mix, N, D, **hp),
                                                        args.repeats)
        work = TOKENS * N * D * c
        floor = 3 * work / peak
        cells = [f"{s * 1e3:.2f} ({k * work / s / 1e9:.0f}, {k * work / s / peak:.0%})"
                 for s, k in ((forward, 1), (native, 1), (backward, 2))]
        print(f"| {name} | {c} | {' | '.join(cells)} | "
              f"{SITES * (native + backward) / plain:.1%} | {SITES * floor / plain:.1%} |")


if __name__ == "__main__":
    main()
