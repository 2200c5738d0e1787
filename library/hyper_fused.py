"""Two autograd Functions that make a hyper-connection site cheap on the (b, t, n, d) streams.

A site touches its streams h in three places: H_pre·h, H_res·h and (manifold mixes) the
RMS-normalised projection of vec h. Left to autograd, each use sends its own gradient back and
the engine adds them (two extra passes over a (b, t, n, d) tensor), and the RMS norm's backward
costs three more. These Functions compute the same values with hand-written backwards:

- `width(h, pre, res)` → (x, mixed): one bmm with [H_pre; H_res] ((n+1)×n per token), and one
  bmm for h's gradient, [H_pre; H_res]ᵀ·[∂x; ∂mixed].
- `normed_projection(flat, proj)` → vec h·W / rms(vec h): the gradient through the RMS is
  c·vec h per token, c = -Σ(∂out·out)/(n·d·(mean square + ε)), added to ∂out/rms·Wᵀ in one pass.

Both are exact (tests/library/test_hyper_connections_differential.py checks values and gradients
against plain loops, and gradcheck in float64). Batched over every leading axis; no loops.

>>> import torch
>>> h = torch.randn(2, 3, 4, 5)
>>> x, mixed = width(h, torch.full((4,), 0.25), torch.eye(4))
>>> torch.allclose(x, h.mean(-2)), torch.allclose(mixed, h)
(True, True)
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

__all__ = ["width", "normed_projection"]


class _Width(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, h: Tensor, pre: Tensor, res: Tensor) -> tuple[Tensor, Tensor]:
        lead, (n, d) = h.shape[:-2], h.shape[-2:]
        flat = h.reshape(-1, n, d)  # (B, n, d)
        batch = flat.shape[0]
        weights = torch.cat((pre.reshape(-1, 1, n).expand(batch, 1, n),
                             res.reshape(-1, n, n).expand(batch, n, n)), 1)  # (B, n+1, n)
        out = torch.bmm(weights, flat)  # (B, n+1, d)
        ctx.save_for_backward(flat, weights)
        ctx.shapes = (h.shape, pre.shape, res.shape)
        return out[:, 0].reshape(*lead, d), out[:, 1:].reshape(*lead, n, d)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_x: Tensor, grad_mixed: Tensor
                 ) -> tuple[Tensor, Tensor, Tensor]:
        flat, weights = ctx.saved_tensors
        h_shape, pre_shape, res_shape = ctx.shapes
        batch, n, d = flat.shape
        grads = torch.cat((grad_x.reshape(batch, 1, d), grad_mixed.reshape(batch, n, d)), 1)
        # a contiguous (B, n, n+1) transpose: bmm with the strided view is ten times slower
        grad_h = torch.bmm(weights.transpose(1, 2).contiguous(), grads).reshape(h_shape)
        grad_w = torch.bmm(grads, flat.transpose(1, 2))  # (B, n+1, n)
        return grad_h, _sum_to(grad_w[:, 0], pre_shape), _sum_to(grad_w[:, 1:], res_shape)


def _sum_to(grad: Tensor, shape: torch.Size) -> Tensor:
    """A per-token gradient (B, …) summed over the tokens when the weight was shared (static)."""
    if grad.dim() - 1 == len(shape):  # shared by every token
        return grad.sum(0)
    return grad.reshape(shape)


def width(h: Tensor, pre: Tensor, res: Tensor) -> tuple[Tensor, Tensor]:
    """x = H_pre·h (..., d) and mixed = H_res·h (..., n, d) for streams h (..., n, d), with pre
    (n,) or (..., n) and res (n, n) or (..., n, n) (rows = output stream)."""
    x, mixed = _Width.apply(h, pre, res)
    return x, mixed


class _NormedProjection(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, flat: Tensor, proj: Tensor, eps: float) -> Tensor:
        square = torch.linalg.vector_norm(flat, dim=-1, keepdim=True).square_()
        inv_rms = torch.rsqrt(square / flat.shape[-1] + eps)  # (..., 1)
        out = (flat @ proj) * inv_rms  # (..., c)
        ctx.save_for_backward(flat, proj, inv_rms, out)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, Tensor, None]:
        flat, proj, inv_rms, out = ctx.saved_tensors
        scaled = grad * inv_rms  # (..., c)
        # d(inv_rms)/d(flat) = -inv_rms³·flat/(n·d), and out = (flat·W)·inv_rms
        coef = -(grad * out).sum(-1, keepdim=True) * inv_rms.square() / flat.shape[-1]
        grad_flat = torch.addcmul(scaled @ proj.T, coef, flat)
        grad_proj = flat.reshape(-1, flat.shape[-1]).T @ scaled.reshape(-1, proj.shape[-1])
        return grad_flat, grad_proj, None


def normed_projection(flat: Tensor, proj: Tensor, eps: float) -> Tensor:
    """(flat @ proj) / sqrt(mean(flat²) + eps), flat (..., k), proj (k, c) → (..., c): mHC's
    projection of RMSNorm(vec h), the norm applied after the matmul (mHC Eqs. 14-19)."""
    out: Tensor = _NormedProjection.apply(flat, proj, eps)
    return out
