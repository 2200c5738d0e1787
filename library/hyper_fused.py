"""Two autograd Functions that make a hyper-connection site cheap on the (b, t, n, d) streams,
and the stream mixing they share with the fused per-token site (`hyper_fused_site`). Left to
autograd, H_pre·h and H_res·h would each send their own gradient of h back for the engine to
add, and the depth connection's broadcast would materialise its products in the backward.
These Functions compute the same values with hand-written backwards:

- `width(h, pre, res)` → (x, mixed): H_pre·h and H_res·h (n and n×n per token); h's gradient
  is H_resᵀ·∂mixed + H_preᵀ ⊗ ∂x, built in one buffer.
- `depth(mixed, post, y)` → mixed + H_post ⊗ y; its backward passes ∂out through to mixed
  untouched and reduces it for ∂y = H_postᵀ·∂out and ∂H_post = ∂out·y (autograd of the
  broadcast would materialise the (..., n, d) products).
- `depth_width(mixed, post, y, pre', res')` → width(depth(mixed, post, y), pre', res'): one
  site's depth connection and the next one's width connection, which the compiler hands over
  (`compiler.passes.fuse_depth_into_width`). With the native kernels it is one pass each way
  (`hyper_native_depth_width.c`) and the streams between the two sites are never stored: about
  a third fewer bytes moved over the streams per site (50 MB against 74 at 2,048 tokens × 4
  streams × 256, float32), and one (b, t, n, d) activation fewer.

Each runs by the native kernels of `hyper_native` where they could be built (one pass over the
streams per connection and direction, on torch's threads), else by torch: a bmm per product
(one bmm and one baddbmm for h's gradient) and one broadcast multiply-add for the depth
connection. Both are exact (tests/library/test_hyper_connections_differential.py checks values
and gradients against plain loops, and gradcheck in float64; tests/library/test_hyper_native.py
checks the two paths agree). Batched over every leading axis; no loops.

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

from archc.library import hyper_native

__all__ = ["width", "depth", "depth_width", "mix_streams", "mix_streams_backward", "sum_to",
           "flat_depth"]


class _Width(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, h: Tensor, pre: Tensor, res: Tensor, native: bool
                ) -> tuple[Tensor, Tensor]:
        flat = h.reshape(-1, *h.shape[-2:]).contiguous()  # (B, n, d); the backward reads it
        x, mixed, pre_p, res_p = mix_streams(flat, pre, res, native)
        ctx.save_for_backward(flat, pre_p, res_p)
        ctx.shapes, ctx.native = (h.shape, pre.shape, res.shape), native
        return x.view(h.shape[:-2] + h.shape[-1:]), mixed.view(h.shape)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_x: Tensor, grad_mixed: Tensor
                 ) -> tuple[Tensor, Tensor, Tensor, None]:
        flat, pre_p, res_p = ctx.saved_tensors
        h_shape, pre_shape, res_shape = ctx.shapes
        grad_h, grad_pre, grad_res = mix_streams_backward(flat, pre_p, res_p, grad_x, grad_mixed,
                                                          ctx.native)
        return (grad_h.view(h_shape), sum_to(grad_pre, pre_shape), sum_to(grad_res, res_shape),
                None)


def mix_streams(flat: Tensor, pre: Tensor, res: Tensor, native: bool = False
                ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """x = H_pre·h (B, 1, d) and mixed = H_res·h (B, n, d) for contiguous streams `flat`
    (B, n, d), with pre (n,) or (B…, n) and res (n, n) or (B…, n, n); also the weights as the
    backward takes them, (P, n) and (P, n, n) with P = 1 when shared. With `native` (callers
    pass it while training) by the kernels of `hyper_native` where they are built, one pass
    over the streams; else by two bmms. x and mixed get their own tensors (not views of one
    (n+1)-row product): the layer reads x without a copy, and the backward concatenates
    nothing."""
    batch, n = flat.shape[:2]
    pre_p, res_p = pre.reshape(-1, n).contiguous(), res.reshape(-1, n, n).contiguous()
    if native and hyper_native.usable(flat, pre_p, res_p):
        x, mixed = hyper_native.width_forward(flat, pre_p, res_p)
        return x, mixed, pre_p, res_p
    return (torch.bmm(_as_rows(pre_p, batch), flat), torch.bmm(res_p.expand(batch, n, n), flat),
            pre_p, res_p)


def _as_rows(weights: Tensor, batch: int) -> Tensor:
    """(P, n) weights (H_pre, H_post) as (B, 1, n) bmm operands; shared ones are copied per token
    (B·n numbers): bmm with a stride-0 (B, 1, n) operand takes twice as long."""
    return weights[:, None].expand(batch, 1, weights.shape[-1]).contiguous()


def mix_streams_backward(flat: Tensor, pre: Tensor, res: Tensor, grad_x: Tensor,
                         grad_mixed: Tensor, native: bool = False
                         ) -> tuple[Tensor, Tensor, Tensor]:
    """The gradients of `mix_streams` for streams (B, n, d) and its (P, n), (P, n, n) weights:
    h's (B, n, d) = H_resᵀ·∂mixed + H_preᵀ ⊗ ∂x, H_pre's per token (B, n) and H_res's per
    token (B, n, n)."""
    batch, n, d = flat.shape
    # contiguous: a gradient may arrive broadcast (the sum collapse sends one stride-0 copy per
    # stream), and bmm over a stride-0 operand falls back to one small matmul per token (a
    # select and a clone each), far slower than the copy
    grad_x = grad_x.contiguous().view(batch, 1, d)
    grad_mixed = grad_mixed.contiguous().view(batch, n, d)
    if native and hyper_native.usable(flat, pre, res, grad_x, grad_mixed):
        return hyper_native.width_backward(flat, pre, res, grad_x, grad_mixed)
    res_t = res.transpose(1, 2)
    if res.shape[0] > 1:  # per token: bmm with a strided transpose is ten times slower
        res_t = res_t.contiguous()
    grad_h = torch.bmm(res_t.expand(batch, n, n), grad_mixed).baddbmm_(
        _as_rows(pre, batch).transpose(1, 2), grad_x)
    grad_pre = torch.bmm(grad_x, flat.transpose(1, 2))[:, 0]
    grad_res = torch.bmm(grad_mixed, flat.transpose(1, 2))
    return grad_h, grad_pre, grad_res


class _Depth(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, mixed: Tensor, post: Tensor, y: Tensor, native: bool) -> Tensor:
        ctx.save_for_backward(post, y)
        ctx.native = native and flat_depth(mixed, post, y)
        n, d = mixed.shape[-2:]
        if ctx.native:
            flat = mixed.reshape(-1, n, d).contiguous()
            post_p, y_flat = post.reshape(-1, n).contiguous(), y.reshape(-1, d).contiguous()
            if hyper_native.usable(flat, post_p, y_flat):
                return hyper_native.depth_forward(flat, post_p, y_flat).view(mixed.shape)
        return torch.addcmul(mixed, post.unsqueeze(-1), y.unsqueeze(-2))  # one pass

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, Tensor, Tensor, None]:
        post, y = ctx.saved_tensors
        n, d = grad.shape[-2:]
        grad = grad.contiguous()  # may arrive broadcast: see `mix_streams_backward`
        flat = grad.view(-1, n, d)
        batch = flat.shape[0]
        post_p, y_flat = post.reshape(-1, n).contiguous(), y.reshape(batch, d).contiguous()
        if ctx.native and hyper_native.usable(flat, post_p, y_flat):
            grad_y, grad_post = hyper_native.depth_backward(flat, post_p, y_flat)
        else:
            grad_y = torch.bmm(_as_rows(post_p, batch), flat)  # H_postᵀ·∂out
            grad_post = torch.bmm(flat, y_flat.view(batch, d, 1))[..., 0]  # ∂out·y per stream
        return grad, sum_to(grad_post, post.shape), grad_y.reshape(y.shape), None


def flat_depth(mixed: Tensor, post: Tensor, y: Tensor) -> bool:
    """Whether the depth connection's operands line up token by token without broadcasting
    (the native kernel's layout): y (..., d) and post (n,) or (..., n) beside mixed (..., n, d)."""
    lead = mixed.shape[:-2]
    return y.shape[:-1] == lead and (post.dim() == 1 or post.shape[:-1] == lead)


def sum_to(grad: Tensor, shape: torch.Size) -> Tensor:
    """A per-token gradient (B, …) summed over the tokens when the weight was shared (static)."""
    if grad.dim() - 1 == len(shape):  # shared by every token
        return grad.sum(0)
    return grad.reshape(shape)


def width(h: Tensor, pre: Tensor, res: Tensor) -> tuple[Tensor, Tensor]:
    """x = H_pre·h (..., d) and mixed = H_res·h (..., n, d) for streams h (..., n, d), with pre
    (n,) or (..., n) and res (n, n) or (..., n, n) (rows = output stream)."""
    x, mixed = _Width.apply(h, pre, res, hyper_native.recording(h, pre, res))
    return x, mixed


def depth(mixed: Tensor, post: Tensor, y: Tensor) -> Tensor:
    """mixed + H_post ⊗ y (..., n, d), post (n,) or (..., n), y (..., d), all one dtype."""
    out: Tensor = _Depth.apply(mixed, post, y, hyper_native.recording(mixed, post, y))
    return out


class _DepthWidth(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, mixed: Tensor, post: Tensor, y: Tensor, pre: Tensor, res: Tensor
                ) -> tuple[Tensor, Tensor]:
        n, d = mixed.shape[-2:]
        flat = mixed.reshape(-1, n, d).contiguous()
        batch = flat.shape[0]
        post_p, y_flat = post.reshape(-1, n).contiguous(), y.reshape(batch, d).contiguous()
        pre_p, res_p = pre.reshape(-1, n).contiguous(), res.reshape(-1, n, n).contiguous()
        x, mixed_out = hyper_native.depth_width_forward(flat, post_p, y_flat, pre_p, res_p)
        ctx.save_for_backward(flat, post_p, y_flat, pre_p, res_p)
        ctx.shapes = (mixed.shape, post.shape, y.shape, pre.shape, res.shape)
        return x.view(y.shape), mixed_out.view(mixed.shape)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_x: Tensor, grad_mixed_out: Tensor) -> tuple[Tensor, ...]:
        flat, post_p, y_flat, pre_p, res_p = ctx.saved_tensors
        batch, n, d = flat.shape
        grad_x = grad_x.contiguous()  # may arrive broadcast: see `mix_streams_backward`
        grad_mixed_out = grad_mixed_out.contiguous()
        grad_mixed, grad_y = torch.empty_like(flat), y_flat.new_empty(batch, d)
        grad_post, grad_pre = flat.new_empty(batch, n), flat.new_empty(batch, n)
        grad_res = flat.new_empty(batch, n, n)
        hyper_native.call("depth_width_backward", batch, n, d, flat, post_p,
                          hyper_native.token_stride(post_p, batch), y_flat, pre_p,
                          hyper_native.token_stride(pre_p, batch), res_p,
                          hyper_native.token_stride(res_p, batch), grad_x, grad_mixed_out,
                          grad_mixed, grad_y, grad_post, grad_pre, grad_res)
        mixed_shape, post_shape, y_shape, pre_shape, res_shape = ctx.shapes
        return (grad_mixed.view(mixed_shape), sum_to(grad_post, post_shape),
                grad_y.view(y_shape), sum_to(grad_pre, pre_shape), sum_to(grad_res, res_shape))


def depth_width(mixed: Tensor, post: Tensor, y: Tensor, pre: Tensor, res: Tensor
                ) -> tuple[Tensor, Tensor]:
    """`width(depth(mixed, post, y), pre, res)`: the next site's x (..., d) and mixed
    (..., n, d) from this site's mixed streams (..., n, d), H_post (n,) or (..., n) and layer
    output y (..., d), with the next site's pre (n,) or (..., n) and res (n, n) or (..., n, n),
    all one dtype. While training, by one native pass each way where the operands line up
    token by token and the kernels are built; else by the two connections."""
    operands = (mixed, post, y, pre, res)
    if (hyper_native.recording(*operands) and flat_depth(mixed, post, y)
            and (pre.dim() == 1 or pre.shape[:-1] == mixed.shape[:-2])
            and hyper_native.usable(*operands)):
        x, mixed_out = _DepthWidth.apply(*operands)
        return x, mixed_out
    return width(depth(mixed, post, y), pre, res)
