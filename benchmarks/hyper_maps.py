"""The per-token maps of the hyper-connection mixes, each against the formulation it replaced.

Run:  python benchmarks/hyper_maps.py [--repeats 30] [--threads 2]

A per-token mix turns its (…, c) logits into H_pre, H_res and H_post at every position, and
trains through them, so these small ops run once per site, token batch and step. At b·t = 2,048
positions and n = 4 streams, forward + backward of an upstream gradient of ones, each pair
interleaved in one process (medians of per-round times):

- KromHC: archc's factor-choice weights times a constant XOR basis
  (`hyper_maps.kron_factors`) vs a batched Kronecker product of the (…, 2, 2) factors;
- sHC's Cayley rotations (m = n - 1 = 3): the closed form I - 2(A - A²)/(1 + θ²) vs the batched
  solve (I + A)⁻¹(I - A) (`hyper_maps._cayley` takes the solve for m > 3);
- mHC's Sinkhorn, 20 iterations, forward only: steps after the first two as a division of the
  previous softmax vs as log, subtract and exp (both stabilised alike for the first two);
- the projection's weight gradient hᵀ·g (h (2,048, n·d = 1,024), g (2,048, 24) for mhc) as
  computed, (gᵀ·h)ᵀ, vs the same GEMM written hᵀ @ g.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable

import torch
from bench_args import positive

from archc.library.hyper_maps import _cayley, kron_factors
from archc.library.hyper_sinkhorn import _COLUMNS, _ROWS, _iterates

TOKENS, N, D = 2048, 4, 256


def kron_products(logits: torch.Tensor) -> torch.Tensor:
    """KromHC's H_res as K batched Kronecker products of its 2×2 factors (the old path)."""
    weights = torch.softmax(logits.unflatten(-1, (-1, 2)), -1)
    keep, swap = weights[..., 0], weights[..., 1]
    factors = torch.stack((keep, swap, swap, keep), -1).unflatten(-1, (2, 2))
    out = logits.new_ones(*logits.shape[:-1], 1, 1)
    for k in range(factors.shape[-3]):
        u, m = factors[..., k, :, :], out.shape[-1]
        out = (out[..., :, None, :, None] * u[..., None, :, None, :]).reshape(
            *out.shape[:-2], 2 * m, 2 * m)
    return out


def cayley_solve(upper: torch.Tensor, m: int) -> torch.Tensor:
    """(I + A)⁻¹(I - A) by a batched solve, at every m."""
    rows, cols = torch.triu_indices(m, m, 1)
    skew = upper.new_zeros(*upper.shape[:-1], m, m)
    skew[..., rows, cols] = upper
    skew = skew - skew.transpose(-1, -2)
    eye = torch.eye(m, dtype=upper.dtype)
    return torch.linalg.solve(eye + skew, eye - skew)


def sinkhorn_log_steps(log: torch.Tensor, iters: int) -> list[torch.Tensor]:
    """Sinkhorn's iterates with every step after the first two in the log domain."""
    steps = []
    for step in range(2 * iters):
        axis = _ROWS if step % 2 else _COLUMNS
        if step < 2:
            shifted = log - log.amax(axis, keepdim=True)
            exp = shifted.exp()
            total = exp.sum(axis, keepdim=True)
            log = shifted - total.log()
            steps.append(exp.div_(total))
        else:
            log.sub_(steps[-1].sum(axis, keepdim=True).log_())
            steps.append(log.exp())
    return steps


def trained(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> Callable[[], None]:
    """One forward + backward of `fn` at a fresh leaf copy of `x`."""
    def run() -> None:
        leaf = x.detach().requires_grad_()
        out = fn(leaf)
        out.backward(torch.ones_like(out))
    return run


def pairs() -> dict[str, tuple[Callable[[], object], Callable[[], object]]]:
    """Name → (archc's way, the formulation it replaced)."""
    gen = torch.Generator().manual_seed(0)
    kron_logits = torch.randn(TOKENS, 2 * (N.bit_length() - 1), generator=gen)
    m = N - 1
    upper = torch.randn(TOKENS, m * (m - 1) // 2, generator=gen)
    sinkhorn_logits = torch.randn(N, N, TOKENS, generator=gen)
    rows = torch.randn(TOKENS, N * D, generator=gen)
    grad = torch.randn(TOKENS, 2 * N + N * N, generator=gen)
    return {
        "KromHC H_res, forward + backward": (trained(kron_factors, kron_logits),
                                             trained(kron_products, kron_logits)),
        "sHC Cayley rotation (m = 3), forward + backward": (
            trained(lambda u: _cayley(u, m), upper), trained(lambda u: cayley_solve(u, m), upper)),
        "mHC Sinkhorn, 20 iterations, forward": (
            lambda: _iterates(sinkhorn_logits.clone(), 20),
            lambda: sinkhorn_log_steps(sinkhorn_logits.clone(), 20)),
        "projection weight gradient (1,024 × 24)": (lambda: (grad.T @ rows).T.contiguous(),
                                                    lambda: rows.T @ grad),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=positive, default=30)
    parser.add_argument("--threads", type=positive, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {platform.machine()}, {args.threads} threads, "
          f"{TOKENS:,} positions, n = {N}, d = {D}; {args.repeats} interleaved repeats, "
          f"medians; {time.strftime('%Y-%m-%d')}\n")
    print("| map | archc µs | replaced formulation µs | replaced / archc |")
    print("|---|---|---|---|")
    for name, (ours, theirs) in pairs().items():
        times: tuple[list[float], list[float]] = ([], [])
        for round_ in range(args.repeats + 2):  # two warm-up rounds
            for run, own in zip((ours, theirs), times, strict=True):
                start = time.perf_counter()
                run()
                if round_ >= 2:
                    own.append(time.perf_counter() - start)
        a, b = (statistics.median(own) for own in times)
        print(f"| {name} | {1e6 * a:.0f} | {1e6 * b:.0f} | {b / a:.2f} |")


if __name__ == "__main__":
    main()
