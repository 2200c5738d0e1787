"""Issue 5's hyper-connection tables on a CUDA GPU: the same workloads as the CPU benchmarks.

Run:  python benchmarks/hyper_gpu.py [--repeats 30] [--plain-repeats 3] [--compile]
      [--device cuda]

(`--device cpu` runs the same tables on the CPU, timed by the wall clock: a smoke test of the
script where no GPU is lent; the CPU's own figures come from hyper_native.py.)

On the GPU archc's C kernels (library/hyper_native*.c) never run: every site takes torch's
path (library/hyper_fused.py, hyper_fused_site.py, the maps' torch graph), eager. Three
tables, float32 (matmuls at torch's default "highest" precision, no TF32), timed with CUDA
events around each forward + backward, the variants interleaved round by round in an order
that turns each round, each figure the median over rounds of a variant's time over its
baseline's in the same round:

1. one `Connection` around an MLP branch (d 256 → 1024 → 256, GELU; b 8 × t 256, n = 4) over
   `x + mlp(x)` (benchmarks/hyper_site.py's workload; target ≤ 1.25×); with `--compile`, once
   more at the end with both compiled by `torch.compile` (compiled over compiled);
2. the 12-layer hyper-connected transformer of benchmarks/hyper_transformer.py (24 sites,
   b 8 × t 256) over the same network with plain residuals (target ≤ 1.15×);
3. that network's fused sites against the plain per-token sites of tests/library/hyper_plain.py
   (the papers' equations one token and one stream at a time), at b 1 × t 16, where the plain
   loops finish (target ≥ 1.5× for mhc and mhc_lite).
"""

from __future__ import annotations

import argparse
import copy
import datetime
import statistics
import time
from collections.abc import Callable

import torch
from bench_args import positive, rotated
from hyper_site import MIXES as SITE_MIXES
from hyper_site import B, D, N, T, mlp
from hyper_transformer import MIXES as NETWORK_MIXES
from hyper_transformer import network, plain_sites, training_step
from torch import nn

from archc.library.hyper_connections_modules import Connection, depth_connection

DEVICE = torch.device("cuda")
"""Where the tables run (`--device` sets it)."""
Step = Callable[[], None]


def milliseconds(step: Step) -> float:
    """One forward + backward, from CUDA events recorded around it (host launch gaps count);
    on the CPU, by the wall clock."""
    if DEVICE.type != "cuda":
        start_s = time.perf_counter()
        step()
        return 1e3 * (time.perf_counter() - start_s)
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    step()
    end.record()
    end.synchronize()
    return start.elapsed_time(end)


def ratios(steps: dict[str, Step], base: str, repeats: int, warm: int = 3
           ) -> dict[str, tuple[float, float]]:
    """Each step's (median ms, median of its per-round ratio to `base`), rounds interleaved."""
    for _ in range(warm):
        for step in steps.values():
            step()
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for round_ in range(repeats):
        for name in rotated(list(steps), round_):
            times[name].append(milliseconds(steps[name]))
    return {name: (statistics.median(own),
                   statistics.median(t / b for t, b in zip(own, times[base], strict=True)))
            for name, own in times.items()}


class Around(nn.Module):
    """A site around the branch: x, mixed, post = site(h); depth(mixed, post, branch(x))."""

    def __init__(self, site: Connection, branch: nn.Module) -> None:
        super().__init__()
        self.site, self.branch = site, branch

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        layer_input, mixed, post = self.site(h)
        return depth_connection(mixed, post, self.branch(layer_input))


class Residual(nn.Module):
    def __init__(self, branch: nn.Module) -> None:
        super().__init__()
        self.branch = branch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.branch(x)


def backward_step(module: nn.Module, inputs: torch.Tensor, grad: torch.Tensor) -> Step:
    def step() -> None:
        module.zero_grad(set_to_none=True)
        inputs.grad = None
        module(inputs).backward(grad)
    return step


def site_steps(compiled: bool) -> dict[str, Step]:
    """Table 1's steps: the baseline and each mix's site around the same MLP branch."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(B, T, D, generator=gen).to(DEVICE).requires_grad_()
    h = torch.randn(B, T, N, D, generator=gen).to(DEVICE).requires_grad_()
    g1 = torch.randn(B, T, D, generator=gen).to(DEVICE)
    gn = torch.randn(B, T, N, D, generator=gen).to(DEVICE)
    branch = mlp().to(DEVICE)
    modules: dict[str, nn.Module] = {"x + mlp(x)": Residual(branch)}
    modules |= {name: Around(Connection(mix, N, D, **hp).to(DEVICE), branch)
                for name, (mix, hp) in SITE_MIXES.items()}
    if compiled:
        modules = {name: torch.compile(m) for name, m in modules.items()}
    return {name: backward_step(m, x, g1) if name == "x + mlp(x)" else backward_step(m, h, gn)
            for name, m in modules.items()}


def site_table(repeats: int, compiled: bool = False) -> list[str]:
    found = ratios(site_steps(compiled), "x + mlp(x)", repeats)
    against = "compiled x + mlp(x)" if compiled else "x + mlp(x)"
    rows = [f"| site | median ms | × {against} | ≤ 1.25× |", "|---|---|---|---|"]
    for name, (ms, ratio) in found.items():
        verdict = "" if name == "x + mlp(x)" else ("met" if ratio <= 1.25 else "**not met**")
        rows.append(f"| {name} | {ms:.2f} | {ratio:.2f} | {verdict} |")
    return rows


def network_step(gm: nn.Module, batch: int, tokens: int) -> Step:
    return training_step(gm, batch, tokens, DEVICE)


def network_table(repeats: int) -> list[str]:
    steps = {"plain residual": network_step(network(None, T).to(DEVICE), B, T)}
    steps |= {name: network_step(network(mix, T).to(DEVICE), B, T)
              for name, mix in NETWORK_MIXES.items()}
    found = ratios(steps, "plain residual", repeats)
    rows = ["| network | median step ms | × plain residual | ≤ 1.15× |", "|---|---|---|---|"]
    for name, (ms, ratio) in found.items():
        verdict = "" if name == "plain residual" else ("met" if ratio <= 1.15 else "**not met**")
        rows.append(f"| {name} | {ms:.2f} | {ratio:.3f} | {verdict} |")
    return rows


def plain_table(repeats: int) -> list[str]:
    rows = ["| mix | fused step ms | plain step ms | plain / fused | target |",
            "|---|---|---|---|---|"]
    for name, mix in NETWORK_MIXES.items():
        fused = network(mix, 16).to(DEVICE)
        plain = plain_sites(copy.deepcopy(fused))  # the same weights
        found = ratios({"fused": network_step(fused, 1, 16),
                        "plain": network_step(plain, 1, 16)}, "fused", repeats, warm=1)
        (fused_ms, _), (plain_ms, ratio) = found["fused"], found["plain"]
        target = (("≥ 1.5×: " + ("met" if ratio >= 1.5 else "**not met**"))
                  if mix in ("mhc", "mhc_lite") else "")
        rows.append(f"| {name} | {fused_ms:.2f} | {plain_ms:.1f} | {ratio:.1f} | {target} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=positive, default=30, help="rounds, tables 1 and 2")
    parser.add_argument("--plain-repeats", type=positive, default=3, help="rounds, table 3")
    parser.add_argument("--compile", action="store_true",
                        help="table 1 also under torch.compile (minutes of compiling)")
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"),
                        help="cpu: a smoke test of the script, timed by the wall clock")
    args = parser.parse_args()
    global DEVICE
    DEVICE = torch.device(args.device)
    if DEVICE.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("hyper_gpu.py --device cuda: torch sees no GPU here")
    torch.manual_seed(0)
    started = time.perf_counter()
    print(f"`python benchmarks/hyper_gpu.py --repeats {args.repeats} --plain-repeats "
          f"{args.plain_repeats}{' --compile' if args.compile else ''} --device {args.device}`: "
          f"{torch.cuda.get_device_name() if DEVICE.type == 'cuda' else 'CPU'}, "
          f"torch {torch.__version__}, float32, "
          f"{datetime.date.today().isoformat()}\n", flush=True)
    tables: list[tuple[str, Callable[[], list[str]]]] = [
        ("One site around an MLP branch, forward + backward, eager",
         lambda: site_table(args.repeats)),
        ("12-layer hyper-connected transformer (24 sites), forward + backward, eager, × the "
         "same network with plain residuals", lambda: network_table(args.repeats)),
        ("Fused sites against the plain per-token sites in the same network (b 1 × t 16)",
         lambda: plain_table(args.plain_repeats))]
    if args.compile:  # last: the eager tables are printed even if compiling runs long
        tables.append(("One site around an MLP branch, both under torch.compile",
                       lambda: site_table(args.repeats, compiled=True)))
    for title, table in tables:
        print(f"{title}:\n\n" + "\n".join(table()) + "\n", flush=True)
    print(f"Whole run: {time.perf_counter() - started:.0f} s.")


if __name__ == "__main__":
    main()
