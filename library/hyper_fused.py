"""Two autograd Functions that make a hyper-connection site cheap on the (b, t, n, d) streams,
and the stream mixing they share with the fused per-token site (`hyper_fused_site`). Left to
autograd, H_pre·h and H_res·h would each send their own gradient of h back for the engine to
add, and the depth connection's broadcast would materialise its products in the backward.
These Functions compute the same values with hand-written backwards:

- `width(h, pre, res)` → (x, mixed): a bmm each, H_pre·h and H_res·h (n and n×n per token);
  h's gradient is H_resᵀ·∂mixed with H_preᵀ ⊗ ∂x added in place (one bmm, one baddbmm).
- `depth(mixed, post, y)` → mixed + H_post ⊗ y: one broadcast multiply-add; its backward passes
  ∂out through to mixed untouched and reduces it twice by bmm, for ∂y = H_postᵀ·∂out and
  ∂H_post = ∂out·y (autograd of the broadcast would materialise the (..., n, d) products).
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

__all__ = ["width", "depth", "mix_streams", "mix_streams_backward"]


class _Width(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, h: Tensor, pre: Tensor, res: Tensor) -> tuple[Tensor, Tensor]:
        flat = h.reshape(-1, *h.shape[-2:])  # (B, n, d)
        x, mixed, pre_b, res_b = mix_streams(flat, pre, res)
        ctx.save_for_backward(flat, pre_b, res_b)
        ctx.shapes = (h.shape, pre.shape, res.shape)
        return x.view(h.shape[:-2] + h.shape[-1:]), mixed.view(h.shape)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_x: Tensor, grad_mixed: Tensor
                 ) -> tuple[Tensor, Tensor, Tensor]:
        flat, pre_b, res_b = ctx.saved_tensors
        h_shape, pre_shape, res_shape = ctx.shapes
        grad_h, grad_pre, grad_res = mix_streams_backward(flat, pre_b, res_b, grad_x, grad_mixed)
        return grad_h.view(h_shape), _sum_to(grad_pre, pre_shape), _sum_to(grad_res, res_shape)


def mix_streams(flat: Tensor, pre: Tensor, res: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """x = H_pre·h (B, 1, d) and mixed = H_res·h (B, n, d) for streams `flat` (B, n, d), with
    pre (n,) or (B…, n) and res (n, n) or (B…, n, n); also the (B, 1, n) and (B, n, n) views
    of the weights the backward needs. x and mixed get their own tensors (not views of one
    (n+1)-row bmm): the layer reads x without a copy, and the backward concatenates nothing."""
    batch, n = flat.shape[:2]
    # a shared H_pre is copied per token (B·n numbers): bmm with a stride-0 (B, 1, n) operand
    # takes twice as long
    pre_b = pre.reshape(-1, 1, n).expand(batch, 1, n).contiguous()
    res_b = res.reshape(-1, n, n).expand(batch, n, n)
    return torch.bmm(pre_b, flat), torch.bmm(res_b, flat), pre_b, res_b


def mix_streams_backward(flat: Tensor, pre_b: Tensor, res_b: Tensor, grad_x: Tensor,
                         grad_mixed: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The gradients of `mix_streams` for streams (B, n, d): h's (B, n, d) = H_resᵀ·∂mixed with
    H_preᵀ ⊗ ∂x added in place, H_pre's per token (B, n) and H_res's per token (B, n, n)."""
    batch, n, d = flat.shape
    # contiguous: a gradient may arrive broadcast (the sum collapse sends one stride-0 copy per
    # stream), and bmm over a stride-0 operand falls back to one small matmul per token (a
    # select and a clone each), far slower than the copy
    grad_x = grad_x.contiguous().view(batch, 1, d)
    grad_mixed = grad_mixed.contiguous().view(batch, n, d)
    res_t = res_b.transpose(1, 2)
    if res_b.stride(0):  # per token: bmm with a strided transpose is ten times slower
        res_t = res_t.contiguous()
    grad_h = torch.bmm(res_t, grad_mixed).baddbmm_(pre_b.transpose(1, 2), grad_x)
    grad_pre = torch.bmm(grad_x, flat.transpose(1, 2))[:, 0]
    grad_res = torch.bmm(grad_mixed, flat.transpose(1, 2))
    return grad_h, grad_pre, grad_res


class _Depth(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, mixed: Tensor, post: Tensor, y: Tensor) -> Tensor:
        ctx.save_for_backward(post, y)
        return torch.addcmul(mixed, post.unsqueeze(-1), y.unsqueeze(-2))  # one pass

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        post, y = ctx.saved_tensors
        n, d = grad.shape[-2:]
        grad = grad.contiguous()  # may arrive broadcast: see `mix_streams_backward`
        flat = grad.view(-1, n, d)
        batch = flat.shape[0]
        post_b = post.reshape(-1, 1, n).expand(batch, 1, n).contiguous()  # see `mix_streams`
        grad_y = torch.bmm(post_b, flat)  # H_postᵀ·∂out
        grad_post = torch.bmm(flat, y.reshape(batch, d, 1))  # ∂out·y per stream
        return grad, _sum_to(grad_post[..., 0], post.shape), grad_y.reshape(y.shape)


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


def depth(mixed: Tensor, post: Tensor, y: Tensor) -> Tensor:
    """mixed + H_post ⊗ y (..., n, d), post (n,) or (..., n), y (..., d), all one dtype."""
    out: Tensor = _Depth.apply(mixed, post, y)
    return out
