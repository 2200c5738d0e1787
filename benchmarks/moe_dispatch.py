"""archc's moe dispatch against a loop over experts, side by side.

archc sorts the assignments by expert once, gathers tokens into their experts' rows and runs
the experts in groups of batched matmuls (large experts one at a time on exactly their rows).

Run:  python benchmarks/moe_dispatch.py [--repeats 9] [--threads 2] [--clock wall|cpu]

Issue 6's shape: e = 8 experts, top-2, 4,096 tokens of width d = 256, mlp experts with hidden
width 4·d and GELU, no capacity limit. The loop is the usual straightforward implementation:
for each expert, find its tokens (`nonzero`), run the expert on them, add the gated outputs
back — computed with the SAME stacked weights and router, so both give the same output
(checked). Both are timed forward only (inference) and forward + backward (training),
interleaved in one process; the table gives medians and the loop's time over archc's.
A third column times the expert GEMMs alone (`expert_gemms_only`). Where the experts are large
(e = 8: one GEMM per expert and layer in every method) the loop's time over theirs is the most
any dispatch can gain on this machine; with many small experts archc's batched matmuls beat
one GEMM call per expert, so there it bounds nothing.
A second shape with many small experts (e = 64, hidden d/4) shows where the per-expert loop's
overhead, rather than the matmuls, dominates. Target (issue 6): ≥ 3× faster at e = 8.

What bounds the e = 8 ratio: both sides run the same N·k rows through the same GEMMs (archc
runs large experts one at a time on exactly their rows, library/moe_modules.py), and those
GEMMs are most of the loop's own time, so no dispatch can be 3× faster than the loop there on
a CPU; what archc saves is the loop's overheads (per-expert `nonzero`, a full-size zero-filled
weight gradient per indexed expert, gathers and scatters per expert).
"""

from __future__ import annotations

import argparse
import functools
import platform
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from bench_args import positive

from archc.library.moe_modules import ExpertMlps, Moe, route

TOKENS, D = 4096, 256


def loop_over_experts(moe: Moe, x: torch.Tensor) -> torch.Tensor:
    """The same mixture, one expert at a time."""
    tokens = x.reshape(-1, moe.d)
    experts, gates = route(moe.router(tokens).float(), moe.top_k, moe.gate)
    m, out = moe.experts, torch.zeros_like(tokens)
    for i in range(moe.e):
        token, choice = (experts == i).nonzero(as_tuple=True)
        if len(token):
            h = F.gelu(tokens[token] @ m.w_up[i] + m.b_up[i, 0])
            y = h @ m.w_down[i] + m.b_down[i, 0]
            out.index_add_(0, token, y * gates[token, choice, None])
    return out.reshape(x.shape)


def expert_gemms_only(moe: Moe, x: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """The work no dispatch can avoid: each expert's MLP on exactly its rows, gathered once
    beforehand, with its own leaf weights (no routing, no gathers, no scatter, no indexing of the
    stacked weights). For large experts, the loop's time over this bounds any dispatch's gain."""
    tokens = x.reshape(-1, moe.d)
    with torch.no_grad():
        experts, _ = route(moe.router(tokens).float(), moe.top_k, moe.gate)
    m = moe.experts
    rows = [tokens[(experts == i).nonzero(as_tuple=True)[0]].clone().requires_grad_()
            for i in range(moe.e)]
    weights = [tuple(w[i].detach().clone().requires_grad_()
                     for w in (m.w_up, m.b_up, m.w_down, m.b_down)) for i in range(moe.e)]

    def run(_: torch.Tensor) -> torch.Tensor:
        outs = [F.gelu(r @ w_up + b_up[0]) @ w_down + b_down[0]
                for r, (w_up, b_up, w_down, b_down) in zip(rows, weights, strict=True)
                if len(r)]
        return torch.cat(outs)
    return run


# `cpu` is the process's CPU time (every thread's): steadier than wall time when other work
# shares the machine, and equal to it for one uncontended thread.
_CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def _time(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, backward: bool,
          clock: Callable[[], float]) -> float:
    start = clock()
    if backward:
        fn(x).sum().backward()
    else:
        with torch.no_grad():
            fn(x)
    return clock() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=positive, default=9)
    parser.add_argument("--threads", type=positive, default=2)
    parser.add_argument("--clock", choices=tuple(_CLOCKS), default="wall",
                        help="wall time, or the process's CPU time (steadier on a busy machine)")
    args = parser.parse_args()
    clock = _CLOCKS[args.clock]
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{args.threads} threads, {args.clock} clock, {args.repeats} interleaved repeats "
          "(medians)\n")
    print("| experts × hidden | pass | archc dispatch ms | loop over experts ms | loop / archc "
          "| expert GEMMs alone ms | loop / GEMMs alone |")
    print("|---|---|---|---|---|---|---|")
    for e, hidden in ((8, 4 * D), (64, D // 4)):
        torch.manual_seed(0)
        moe = Moe(D, e, 2, ExpertMlps(e, D, hidden, "gelu", 0.0, True), None, 0.0, "softmax",
                  False, 0.01)
        x = torch.randn(TOKENS, D)
        with torch.no_grad():
            torch.testing.assert_close(moe(x), loop_over_experts(moe, x), rtol=1e-4, atol=1e-5)
        loop = functools.partial(loop_over_experts, moe)
        floor = expert_gemms_only(moe, x)
        for backward in (False, True):
            ours, theirs, least = _compare((moe, loop, floor), x, backward, args.repeats, clock)
            what = "forward + backward" if backward else "forward"
            print(f"| {e} × {hidden} | {what} | {1e3 * ours:.1f} | {1e3 * theirs:.1f} | "
                  f"{theirs / ours:.2f} | {1e3 * least:.1f} | {theirs / least:.2f} |")


def _compare(runs: tuple[Callable[[torch.Tensor], torch.Tensor], ...], x: torch.Tensor,
             backward: bool, repeats: int, clock: Callable[[], float]) -> tuple[float, ...]:
    """Median seconds of each run (archc's moe, the loop, the GEMMs alone), interleaved."""
    moe = runs[0]
    for run in runs:  # warm up
        _time(run, x, backward, clock)
    times: list[list[float]] = [[] for _ in runs]
    for _ in range(repeats):
        for run, own in zip(runs, times, strict=True):
            own.append(_time(run, x, backward, clock))
        moe.aux_loss()  # type: ignore[attr-defined]  # forget the recorded balance losses
    return tuple(statistics.median(own) for own in times)


if __name__ == "__main__":
    main()
