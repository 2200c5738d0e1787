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
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--clock", choices=tuple(_CLOCKS), default="wall",
                        help="wall time, or the process's CPU time (steadier on a busy machine)")
    args = parser.parse_args()
    clock = _CLOCKS[args.clock]
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{args.threads} threads, {args.clock} clock, {args.repeats} interleaved repeats "
          "(medians)\n")
    print("| experts × hidden | pass | archc dispatch ms | loop over experts ms | loop / archc |")
    print("|---|---|---|---|---|")
    for e, hidden in ((8, 4 * D), (64, D // 4)):
        torch.manual_seed(0)
        moe = Moe(D, e, 2, ExpertMlps(e, D, hidden, "gelu", 0.0, True), None, 0.0, "softmax",
                  False, 0.01)
        x = torch.randn(TOKENS, D)
        with torch.no_grad():
            torch.testing.assert_close(moe(x), loop_over_experts(moe, x), rtol=1e-4, atol=1e-5)
        loop = functools.partial(loop_over_experts, moe)
        for backward in (False, True):
            ours, theirs = _compare(moe, loop, x, backward, args.repeats, clock)
            what = "forward + backward" if backward else "forward"
            print(f"| {e} × {hidden} | {what} | {1e3 * ours:.1f} | {1e3 * theirs:.1f} | "
                  f"{theirs / ours:.2f} |")


def _compare(moe: Moe, loop: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
             backward: bool, repeats: int, clock: Callable[[], float]) -> tuple[float, float]:
    """Median seconds of archc's moe and of the loop, timed one after the other per repeat."""
    _time(moe, x, backward, clock)  # warm up
    _time(loop, x, backward, clock)
    ours, theirs = [], []
    for _ in range(repeats):
        ours.append(_time(moe, x, backward, clock))
        theirs.append(_time(loop, x, backward, clock))
        moe.aux_loss()  # forget the recorded balance losses
    return statistics.median(ours), statistics.median(theirs)


if __name__ == "__main__":
    main()
