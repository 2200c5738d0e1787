"""Sinkhorn-Knopp, stabilised in the log domain, as one autograd Function with its exact backward.

mHC (arXiv 2512.24880, Eq. 9) makes H_res doubly stochastic by alternately normalising the
columns and the rows of M⁽⁰⁾ = exp(logits), `iters` times, rows last. In the log domain each
normalisation subtracts a logsumexp, L ← L - lse(L) over one axis, which never overflows; only
the first two need lse's shift by the maximum (`_iterates` proves why), and after them a step
is a division of the previous softmax by its sums (two small ops), whose results are the
softmaxes the backward needs.

The backward is the exact gradient of the unrolled iterations, not an implicit (fixed-point)
approximation: a step L' = L - lse(L) along an axis has the vector-Jacobian product
g ↦ g - softmax(L)·Σg = g - exp(L')·Σg along that axis, so the backward applies the transposed
steps in reverse to the step outputs exp(L'). They are softmaxes, so the backward is as
stable as the forward. Torch's path saves them (2·iters·n² numbers per token: 2.5 KB at n = 4
and 20 iterations); everything is batched over the leading axes, and the only Python loop is
over iterations. While autograd records, the same steps and the same backward run in C
(`hyper_native.sinkhorn_forward` / `_backward`, one call for all steps, vectorised along the
tokens) where the kernels are built and the steps fit their local arrays
(`hyper_native.sinkhorn_fits`); the C backward recomputes each block's steps from the saved
logits instead (in a 12-layer network the saved steps, 5 MB a site, cost more to write and
read back than the steps cost to compute). Without gradients torch's ops run, so inference
equals an exported model.py exactly.

Double stochasticity (tested in tests/library/test_hyper_connections_properties.py): rows sum to
1 up to rounding after the last (row) step. Columns converge geometrically (Franklin & Lorenz
1989): with Δ = max over i, j, k, l of L_ik + L_jl - L_il - L_jk (Hilbert's projective diameter of
exp(L); Δ ≤ 2·(max L - min L)) and λ = tanh(Δ/4) < 1, after t ≥ 1 iterations

    max_j |Σ_i H_ij - 1| ≤ exp(2·Δ·λ^(2t-1)) - 1,

so 20 iterations reach 1e-6 for logits spread by about 1 and are far from converged for spreads
of 10 (research/blocks.md, Appendix A.1) — mHC-lite's and KromHC's motivation.

>>> import torch
>>> h = sinkhorn(torch.tensor([[0.0, 1.0], [2.0, 0.5]]), 30)
>>> torch.allclose(h.sum(-1), torch.ones(2)), torch.allclose(h.sum(-2), torch.ones(2))
(True, True)
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from archc.library import hyper_native

__all__ = ["sinkhorn", "Sinkhorn", "column_error_bound"]

_COLUMNS, _ROWS = 0, 1  # in the (n, n, B) layout: normalising over rows makes columns sum to 1


def _iterates(log: Tensor, iters: int) -> list[Tensor]:
    """exp of the log-domain iterates after each step, columns then rows, `2·iters` tensors, for
    `log` in the (n, n, B) layout: every reduction runs over an outer axis, vectorised along the
    B tokens (over the last axis of (B, n, n) torch reduces 4 numbers at a time, ~10× slower).

    The first two steps subtract the maximum before exponentiating, as logsumexp does. After
    them no step needs it: every entry is ≤ 0 (the previous step normalised its axis) and every
    line about to be normalised holds an entry ≥ -2·log n (the line's largest entry before the
    previous step was ≥ -log n, and that step subtracted at most log n), so each sum of
    exponentials lies in [1/n², n] — no overflow, no underflow, for any finite logits. A later
    step therefore needs no logarithm at all: exp(L - log Σ exp L) = exp(L) / Σ exp L, so it
    divides the previous iterate's softmax (which the backward saves anyway) by its sums, two
    small ops where the log domain takes four (sum, log, subtract, exp). Rounding: one division
    per entry and step, relative, as the log domain's exp of a rounded L is."""
    steps = []  # each step appends its iterate's softmax exp(L)
    for step in range(2 * iters):
        axis = _ROWS if step % 2 else _COLUMNS
        if step < 2:
            shifted = log - log.amax(axis, keepdim=True)
            exp = shifted.exp()
            total = exp.sum(axis, keepdim=True)
            if step == 0:  # the second step stabilises from the first one's logarithms
                log = shifted - total.log()
            steps.append(exp.div_(total))
        else:  # exp(L - log Σ exp L) = exp(L) / Σ exp L: divide the previous softmax
            previous = steps[-1]
            steps.append(previous / previous.sum(axis, keepdim=True))
    return steps


class Sinkhorn(torch.autograd.Function):
    """exp(logits) projected towards the doubly-stochastic matrices by `iters` column-then-row
    normalisations; `logits` (..., n, n), rows = output stream. Use `sinkhorn(...)`."""

    @staticmethod
    def forward(ctx: Any, logits: Tensor, iters: int, native: bool) -> Tensor:
        shape, n = logits.shape, logits.shape[-1]
        with torch.no_grad():
            log = logits.detach().reshape(-1, n, n).permute(1, 2, 0).contiguous()  # (n, n, B)
            ctx.native = (native and hyper_native.sinkhorn_fits(n, iters)
                          and hyper_native.usable(log))
            if ctx.native:  # the same steps, in C; the backward recomputes them from the logits
                steps, last = [log], hyper_native.sinkhorn_forward(log, iters)
            else:
                steps = _iterates(log, iters)
                last = steps[-1]
        ctx.save_for_backward(*steps)  # torch: 2·iters·n² numbers per token, each step's softmax
        ctx.shape, ctx.iters = shape, iters
        return last.permute(2, 0, 1).contiguous().reshape(shape)  # bmm wants (B, n, n)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:
        steps = ctx.saved_tensors
        n = grad.shape[-1]
        g = grad.reshape(-1, n, n).permute(1, 2, 0).contiguous()  # (n, n, B)
        if ctx.native:
            g = hyper_native.sinkhorn_backward(steps[0], ctx.iters, g)
        else:
            g = g * steps[-1]  # the final exp
            for i in reversed(range(len(steps))):  # g is this Function's own buffer: in place
                axis = _ROWS if i % 2 else _COLUMNS
                g.addcmul_(steps[i], g.sum(axis, keepdim=True), value=-1)
        return g.permute(2, 0, 1).contiguous().reshape(ctx.shape), None, None


def sinkhorn(logits: Tensor, iters: int) -> Tensor:
    """Sinkhorn-Knopp of exp(`logits`) (..., n, n), `iters` ≥ 1 column-then-row steps; while
    autograd records, by the C kernel of `hyper_native` where it is built."""
    out: Tensor = Sinkhorn.apply(logits, iters, hyper_native.recording(logits))
    return out


def column_error_bound(logits: Tensor, iters: int) -> Tensor:
    """The bound above on max_j |column sum - 1| after `iters` iterations, per matrix (...,),
    from the exact projective diameter Δ of exp(`logits`) (O(n⁴) per matrix: for tests)."""
    cross = (logits[..., :, None, :, None] + logits[..., None, :, None, :]  # L_ik + L_jl
             - logits[..., :, None, None, :] - logits[..., None, :, :, None])  # - L_il - L_jk
    delta = cross.flatten(-4).amax(-1)
    lam = torch.tanh(delta / 4)
    return torch.expm1(2 * delta * lam ** (2 * iters - 1))

