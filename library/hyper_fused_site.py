"""A whole width connection whose small matrices are computed from the streams, as one autograd
Function: the dynamic `hc` mix and the four manifold mixes while training.

Such a site reads its streams h twice: a projection of h gives the logits of H_pre, H_res and
H_post (through the mix's maps: tanh, sigmoid, Sinkhorn, …), and those matrices mix h. As two
Functions, each sends its own gradient of h back — two (b, t, n, d) tensors that autograd then
adds. Here the mixing's backward builds h's gradient in one buffer and the projection's part
is added to it in place (one GEMM with beta = 1 and one multiply-add pass). The maps act on
(…, n + …) numbers per token. Given the `Connection` (`site`), they run in C where
`hyper_site_native` covers the mix and the kernels are built: one call forward, and one
backward that returns the projection's backward operands directly. Otherwise they run as an
ordinary small autograd graph nested inside the Function (built under `enable_grad` in the
forward, differentiated by `torch.autograd.grad` in the backward), each mix's own code with its
exact gradient — the reference the C maps are tested against.

The projections, with the norm applied after the matmul (mHC §4.3 for the RMS one):
- `rms` (mhc, mhc_lite, kromhc, shc): vec h (n·d) · W / rms(vec h) → (…, c);
- `layer` (dynamic hc): per stream, LayerNorm(h_j) · W without affine weights →
  (h_j·W - μ_j·1ᵀW)·r_j → (…, n, c), r_j = 1/√(var_j + ε), with var_j = E[h_j²] - μ_j² (in
  float32 that loses digits when |μ_j| ≫ σ_j — here it only feeds the dynamic weights, which
  start at zero and are scaled by 0.01).

Handed its predecessor's depth connection (`Connection(mixed, post, y)`, which the compiler
arranges), the site's streams h = mixed + post ⊗ y are never stored: the projection's C pass
forms them tile by tile, the mixing's (`hyper_native.depth_width_forward`) chunk by chunk, and
the backward pass block by block from the saved mixed and y; the depth's backward (∂y, ∂post;
∂mixed is ∂h) comes from each block of that pass while ∂h is in cache. A pass that writes h,
and another that reads ∂h back, are saved.

Training only: without gradients, and under torch.compile / torch.export, `Connection` runs the
same maths as separate ops (tests/library/test_hyper_fused_site.py checks the two agree in value
and gradient; the differential tests' float64 gradcheck runs through this Function).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

from archc.library import hyper_native, hyper_site_native
from archc.library.hyper_fused import flat_depth, mix_streams, mix_streams_backward, sum_to

__all__ = ["fused_site", "fuses_depth", "project_streams", "projection_operands", "inv_rms",
           "PROJECTIONS", "RMS_EPS"]

Maps = Callable[..., tuple[Tensor, Tensor, Tensor]]
"""(projected, *params) → (H_pre, H_res, H_post) per token: a mix's small maps."""

RMS_EPS = 1e-6
"""Added to the mean square in the manifold mixes' and the head's RMSNorm (TileKernels, HF)."""

PROJECTIONS = {"rms": RMS_EPS, "layer": 1e-5}
"""Each projection's ε: the RMSNorm's, and F.layer_norm's default for dynamic hc."""


def project_streams(h: Tensor, proj: Tensor, kind: str) -> Tensor:
    """The projection as plain ops (`rms` → (…, c), `layer` → (…, n, c)): the reference the fused
    Function matches, and the path without gradients."""
    if kind == "layer":
        return F.layer_norm(h, h.shape[-1:], eps=PROJECTIONS[kind]) @ proj
    flat = h.flatten(-2)
    return (flat @ proj) * inv_rms(flat)


def inv_rms(rows: Tensor) -> Tensor:
    """1 / RMS over the last axis, (..., 1), with `RMS_EPS`: one read of `rows` (a norm, not
    square-and-mean). The manifold mixes' projection and the `head` collapse normalise with it."""
    norm = torch.linalg.vector_norm(rows, dim=-1, keepdim=True)
    return torch.rsqrt(norm.square() / rows.shape[-1] + RMS_EPS)


class _Site(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, h: Tensor, proj: Tensor, kind: str, maps: Maps, site: Any,
                depth_post: Tensor | None, depth_y: Tensor | None, *params: Tensor
                ) -> tuple[Tensor, Tensor, Tensor]:
        lead, (n, d) = h.shape[:-2], h.shape[-2:]
        flat = h.reshape(-1, n, d).contiguous()  # (B, n, d); the backward views it flat
        depth, ctx.depth_shapes = None, None
        if depth_post is not None and depth_y is not None:  # h is the previous site's mixed
            depth = (depth_post.reshape(-1, n).contiguous(), depth_y.reshape(-1, d).contiguous())
            ctx.depth_shapes = (depth_post.shape, depth_y.shape)
        # handed a depth connection, `flat` stays the previous site's mixed: h = mixed +
        # post ⊗ y is formed pass by pass (projection, mixing, backward) and never stored
        ctx.state = ctx.graph = None
        native_maps = (site is not None and hyper_native.usable(flat, proj, *params)
                       and hyper_site_native.supports(site))
        if native_maps and hyper_site_native.forwards_whole(site):  # one C pass
            (projected, inv, mean), (pre_b, res_b, post), ctx.state, x, mixed = (
                hyper_site_native.site_forward(site, flat, proj, params, PROJECTIONS[kind],
                                               depth))
        else:
            projected, inv, mean = _project(kind, flat, proj, depth)
            pre, res, post = _maps_forward(ctx, site if native_maps else None, maps, lead,
                                           projected, params)
            x, mixed, pre_b, res_b = _mix(flat, pre, res, depth)
        ctx.save_for_backward(flat, proj, inv, mean, projected, pre_b, res_b, *(depth or ()))
        ctx.kind, ctx.h_shape, ctx.site = kind, h.shape, site
        return x.view(*lead, d), mixed.view(h.shape), post.detach().view(*lead, n)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_x: Tensor, grad_mixed: Tensor, grad_post: Tensor
                 ) -> tuple[Tensor | None, ...]:
        flat, proj, inv, mean, projected, pre_b, res_b, *depth_saved = ctx.saved_tensors
        depth = tuple(depth_saved) if depth_saved else None
        wanted = ctx.needs_input_grad[7:]
        if ctx.state is not None and hyper_site_native.fuses(ctx.site):  # one C pass
            grad_h, grad_proj, found, depth_grads = hyper_site_native.site_backward(
                ctx.site, ctx.state, flat, proj, inv, mean, projected, pre_b, res_b, grad_x,
                grad_mixed, grad_post, depth)
        else:
            streams = flat if depth is None else hyper_native.depth_forward(flat, *depth)
            grad_h, grad_proj, found = _three_pass_backward(ctx, wanted, streams, proj, inv,
                                                            mean, projected, pre_b, res_b,
                                                            grad_x, grad_mixed, grad_post)
            depth_grads = None if depth is None else hyper_native.depth_backward(grad_h, *depth)
        grad_params = [g if want else None for g, want in zip(found, wanted, strict=True)]
        grad_depth: tuple[Tensor | None, ...] = (None, None)
        if depth_grads is not None:
            post_shape, y_shape = ctx.depth_shapes
            grad_y, grad_depth_post = depth_grads
            grad_depth = (sum_to(grad_depth_post, post_shape), grad_y.view(y_shape))
        return (grad_h.view(ctx.h_shape), grad_proj, None, None, None, *grad_depth,
                *grad_params)


def _maps_forward(ctx: Any, site: Any, maps: Maps, lead: torch.Size, projected: Tensor,
                  params: Sequence[Tensor]) -> tuple[Tensor, Tensor, Tensor]:
    """H_pre, H_res and H_post from the projection: by the C maps where `site` is given
    (their state into ctx.state), else by the maps' own torch graph, kept in ctx.graph to be
    differentiated in the backward."""
    if site is not None:
        pre, res, post, ctx.state = hyper_site_native.forward(site, projected, tuple(params))
        return pre, res, post
    with torch.enable_grad():
        leaf = projected.view(*lead, *projected.shape[1:]).detach().requires_grad_()
        leaves = [p.detach().requires_grad_(p.requires_grad) for p in params]
        pre, res, post = maps(leaf, *leaves)
    ctx.graph = (leaf, leaves, pre, res, post)
    return pre, res, post


def _mix(flat: Tensor, pre: Tensor, res: Tensor, depth: tuple[Tensor, Tensor] | None
         ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(x, mixed, H_pre, H_res as the backward takes them) of streams `flat`, or, with
    `depth`, of the streams the previous site's mixed `flat` and its depth connection form."""
    if depth is None:
        return mix_streams(flat, pre.detach(), res.detach(), native=True)
    n = flat.shape[1]
    pre_b = pre.detach().reshape(-1, n).contiguous()
    res_b = res.detach().reshape(-1, n, n).contiguous()
    x, mixed = hyper_native.depth_width_forward(flat, *depth, pre_b, res_b)
    return x, mixed, pre_b, res_b


def _three_pass_backward(ctx: Any, wanted: Sequence[bool], flat: Tensor, proj: Tensor,
                         inv: Tensor, mean: Tensor, projected: Tensor, pre_b: Tensor,
                         res_b: Tensor, grad_x: Tensor, grad_mixed: Tensor, grad_post: Tensor
                         ) -> tuple[Tensor, Tensor, list[Tensor | None]]:
    """The site's backward as the mixing's, the maps' (C or their torch graph) and the
    projection's, each a pass of its own: (∂h, ∂W, the maps' parameter gradients; `wanted`
    says which parameters need theirs)."""
    batch, n = flat.shape[:2]
    grad_h, grad_pre, grad_res = mix_streams_backward(flat, pre_b, res_b, grad_x, grad_mixed,
                                                      native=True)
    if ctx.state is not None:
        operands, found = hyper_site_native.backward(
            ctx.site, ctx.state, projected, inv, mean,
            (grad_pre, grad_res, grad_post.reshape(batch, n)), proj.shape[0])
    else:
        grad_projected, found = _graph_backward(ctx.graph, wanted, grad_pre, grad_res,
                                                grad_post)
        operands = projection_operands(ctx.kind, grad_projected.view(projected.shape),
                                       projected, proj, inv, mean)
    return grad_h, _project_backward(ctx.kind, grad_h, operands, flat, proj), found


def _project(kind: str, flat: Tensor, proj: Tensor,
             depth: tuple[Tensor, Tensor] | None = None
             ) -> tuple[Tensor, Tensor, Tensor]:
    """(projected, inv, mean) of streams `flat` (B, n, d): the `kind` projection, the norm's
    1/rms or 1/σ, and μ for the layer norm (zero for rms). `rms`: vec h·W (B, c) scaled by
    1/rms(vec h) (B, 1). `layer`: per stream, the mean as one more column of the matmul and
    the variance as E[h²] - μ², (B, n, c) with inv and mean (B, n, 1) — var_mean's reduction
    over d costs as much as 30 reads of h on CPU. The sums of squares come with the matmul
    from one C pass over h where the kernels are built (`projection_forward`), else from a
    norm: a second read of h. With `depth` = (post (P, n), y (B, d)), the previous site's
    depth connection, `flat` is that site's mixed and the C pass forms h = mixed + post ⊗ y
    tile by tile, without storing it."""
    batch, n, d = flat.shape
    weights = proj if kind == "rms" else torch.cat((proj, proj.new_full((d, 1), 1 / d)), 1)
    rows = flat.view(batch, n * d) if kind == "rms" else flat.view(batch * n, d)
    if depth is not None:  # the callers checked hyper_native.usable
        product, square = _depth_products(rows, weights, n if kind == "layer" else 1, d, depth)
    else:
        products = _products_native if hyper_native.usable(rows, weights) else _products
        product, square = products(rows, weights)
    if kind == "rms":
        inv = torch.rsqrt(square + RMS_EPS)  # (B, 1)
        return product.mul_(inv), inv, inv.new_zeros(())  # no centring
    moments, square = product.view(batch, n, -1), square.view(batch, n, 1)
    mean = moments[..., -1:]  # (B, n, 1)
    inv = torch.rsqrt((square - mean.square()).clamp_min_(0) + PROJECTIONS[kind])
    return (moments[..., :-1] - mean * proj.sum(0)).mul_(inv), inv, mean  # (B, n, c)


def _products(rows: Tensor, weights: Tensor) -> tuple[Tensor, Tensor]:
    """rows·weights and the rows' mean squares (R, 1), by torch: a GEMM and a norm."""
    square = torch.linalg.vector_norm(rows, dim=-1, keepdim=True).square_()
    return rows @ weights, square.div_(rows.shape[1])


def _products_native(rows: Tensor, weights: Tensor) -> tuple[Tensor, Tensor]:
    """`_products` in one C pass over the rows (`projection_forward`)."""
    product = rows.new_empty(rows.shape[0], weights.shape[1])
    square = rows.new_empty(rows.shape[0], 1)
    packed = hyper_native.packed_columns(weights)
    hyper_native.call("projection_forward", rows.shape[0], rows.shape[1], weights.shape[1], rows,
                      packed.shape[1], packed, product, square)
    return product, square.div_(rows.shape[1])


def _depth_products(rows: Tensor, weights: Tensor, per_token: int, d: int,
                    depth: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
    """`_products_native` of the streams mixed + post ⊗ y, where `rows` are mixed's, formed row
    by row and not stored (`depth_projection_forward`; `per_token` rows make a token)."""
    post, y = depth
    packed = hyper_native.packed_columns(weights)
    product = rows.new_empty(rows.shape[0], weights.shape[1])
    square = rows.new_empty(rows.shape[0], 1)
    hyper_native.call("depth_projection_forward", rows.shape[0], rows.shape[1],
                      weights.shape[1], d, per_token, rows, post,
                      hyper_native.token_stride(post, y.shape[0]), y, packed.shape[1], packed,
                      product, square)
    return product, square.div_(rows.shape[1])


def _graph_backward(graph: tuple[Any, ...], wanted: Sequence[bool], grad_pre: Tensor,
                    grad_res: Tensor, grad_post: Tensor) -> tuple[Tensor, list[Tensor | None]]:
    """The projection's and the parameters' gradients through the maps' torch graph."""
    leaf, leaves, pre, res, post = graph
    inputs = [leaf, *(p for p, want in zip(leaves, wanted, strict=True) if want)]
    outputs = [(out, grad) for out, grad in ((pre, grad_pre.view(pre.shape)),
                                             (res, grad_res.view(res.shape)),
                                             (post, grad_post)) if out.requires_grad]
    found = iter(torch.autograd.grad([out for out, _ in outputs], inputs,
                                     [grad for _, grad in outputs], allow_unused=True,
                                     retain_graph=True))  # gradcheck calls back twice
    grad_projected = next(found)  # never None: H_pre always reads the projection
    return grad_projected, [next(found) if want else None for want in wanted]


def projection_operands(kind: str, grad: Tensor, projected: Tensor, proj: Tensor, inv: Tensor,
                        mean: Tensor) -> tuple[Tensor, ...]:
    """What the projection's backward adds into h's gradient, from ∂projected `grad`:
    `rms` → (∂out·r, coef) with out = (vec h·W)·r, r = rms⁻¹ and dr/dh = -r³·h/(n·d), so
    ∂h = (∂out·r)·Wᵀ + coef·h with coef = -(∂out·out)·r²/(n·d) (B, 1);
    `layer` → (operand, coef, Σ μ·∂out·r): out = x̂·W, x̂ = (h - μ)·r, so
    ∂h = r·(∂x̂ - mean(∂x̂) - x̂·mean(∂x̂·x̂)) with ∂x̂ = ∂out·Wᵀ, mean(∂x̂) = ∂out·mean_d(Wᵀ)
    and mean(∂x̂·x̂) = ∂out·out/d: rank-c terms and two scalars per stream, as one matmul
    operand [∂out·r | shift] (B·n, c + 1) and coef = b·r (B, n, 1).
    `hyper_site_native.backward` computes the same in C."""
    width = proj.shape[0]  # the normalised length: n·d (rms) or d (layer)
    scaled = grad * inv  # ∂out·r: (B, c) or (B, n, c)
    if kind == "rms":
        return scaled, -(grad * projected).sum(-1, keepdim=True) * inv.square() / width
    rows = scaled.reshape(-1, scaled.shape[-1])  # (B·n, c)
    b = -(grad * projected).sum(-1, keepdim=True) * inv / width  # (B, n, 1): x̂'s coefficient / r
    shift = -(scaled @ proj.mean(0)).unsqueeze(-1) - b * inv * mean  # (B, n, 1)
    return torch.cat((rows, shift.view(-1, 1)), 1), b * inv, (mean * scaled).sum((0, 1))


def _project_backward(kind: str, grad_h: Tensor, operands: tuple[Tensor, ...], flat: Tensor,
                      proj: Tensor) -> Tensor:
    """Add the projection's part of h's gradient to `grad_h` (B, n, d) in place, from
    `projection_operands`; return W's gradient. By one C pass where the kernels are built
    (`hyper_native_projection.c`), else by an addmm_, an addcmul_ and a GEMM."""
    batch, n, d = flat.shape
    if hyper_native.usable(flat, grad_h, proj, *operands):
        return _project_backward_native(kind, grad_h, operands, flat, proj)
    if kind == "rms":
        scaled, coef = operands
        rows = grad_h.view(batch, n * d)
        rows.addmm_(scaled, proj.T).addcmul_(coef, flat.view(batch, n * d))
        return _weight_grad(scaled, flat.view(batch, n * d))
    operand, coef, mean_scaled = operands
    grad_h.view(-1, d).addmm_(operand, torch.cat((proj.T, proj.new_ones(1, d))))
    grad_h.addcmul_(coef, flat)
    return (_weight_grad(operand[:, :-1], flat.view(-1, d))
            - torch.outer(proj.new_ones(d), mean_scaled))


_BLOCK = 128
"""Rows per partial sum of W's gradient in the C pass: fixed, so the sum does not depend on the
thread count (the blocks are added by one small torch sum)."""


def _project_backward_native(kind: str, grad_h: Tensor, operands: tuple[Tensor, ...],
                             flat: Tensor, proj: Tensor) -> Tensor:
    """`_project_backward` in one C pass over h and its gradient: rows of vec h (rms) or of
    each stream (layer, whose operand carries the shift column, against a column of ones)."""
    batch, n, d = flat.shape
    if kind == "rms":
        scaled, coef = operands
        rows, weights = flat.view(batch, n * d), proj.contiguous()  # W (n·d, c)
    else:
        scaled, coef, mean_scaled = operands
        rows, weights = flat.view(batch * n, d), torch.cat((proj, proj.new_ones(d, 1)), 1)
    count, width = rows.shape
    c = weights.shape[1]
    columns = hyper_native.padded_transpose(weights)  # Wᵀ, rows an odd number of lines apart
    stride = columns.shape[1]
    partial = rows.new_empty(-(-count // _BLOCK), c, stride)
    hyper_native.call("projection_backward", count, width, stride, c, rows, scaled.contiguous(),
                      coef.contiguous(), columns, grad_h, _BLOCK, partial)
    grad = hyper_native.summed_transpose(partial, width)  # (width, c) = hᵀ·scaled
    if kind == "rms":
        return grad
    return grad[:, :-1] - mean_scaled


def _weight_grad(grad: Tensor, inputs: Tensor) -> Tensor:
    """inputsᵀ·grad, (in, c), for inputs (N, in) and a narrow grad (N, c), computed as
    (gradᵀ·inputs)ᵀ: with c a few dozen columns and N thousands of rows, that orientation of the
    GEMM takes half the time or less on CPU (benchmarks/RESULTS.md, the third pass)."""
    return (grad.T @ inputs).T.contiguous()


def fused_site(h: Tensor, proj: Tensor, kind: str, maps: Maps, params: Sequence[Tensor],
               site: Any = None, depth: tuple[Tensor, Tensor] | None = None
               ) -> tuple[Tensor, Tensor, Tensor]:
    """(x, mixed, post) of a site whose `maps` turn the `kind` projection of streams h
    (…, n, d) by `proj` into H_pre, H_res and H_post; `params` are the maps' parameters.
    With `site` (the `Connection`) the maps run in C where `hyper_site_native` covers them.
    With `depth` = (post, y), for which the caller checked `fuses_depth`, the streams are the
    previous site's depth connection h + post ⊗ y (h then that site's mixed), formed pass by
    pass and never stored, and differentiated in the site's backward pass: one read of the
    streams less each way than `depth_connection` first."""
    post, y = depth if depth is not None else (None, None)
    x, mixed, post = _Site.apply(h, proj, kind, maps, site, post, y, *params)
    return x, mixed, post


def fuses_depth(mixed: Tensor, proj: Tensor, post: Tensor, y: Tensor) -> bool:
    """Whether `fused_site` may take a predecessor's depth connection (mixed, post, y): the
    kernels are built and usable on these tensors, and the operands line up token by token."""
    return hyper_native.usable(mixed, proj, post, y) and flat_depth(mixed, post, y)
