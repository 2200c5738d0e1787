"""A per-token site's small maps in C while training: projection → H_pre, H_res, H_post and the
exact way back (`hyper_native_maps.c`), for `hyper_fused_site`.

Why: the maps act on a few dozen numbers per token, and as torch ops each is a pass over
(B, c) numbers plus its autograd node — dozens of ops forward and backward (sHC's rotations,
KromHC's factors, dynamic hc's per-stream layer norm), which cost as much as the stream mixing
itself (benchmarks/RESULTS.md). `site_forward` runs the site's whole forward in one C pass
(`hyper_native_site_forward.c`): per block of tokens the projection's products and norm, the
maps with their transcendentals (vectorised in `hyper_native_math.c`; mhc's Sinkhorn along the
block's tokens) and the stream mixing, the streams read once — handed the predecessor's depth
connection, formed in cache and never stored. `forward` is the three-call path kept for where
that pass is not built (shc beyond four streams is not covered at all): the maps in one call,
torch supplying their sigmoids, softmaxes and tanhs, and mHC's Sinkhorn in its own kernel
(`hyper_native.sinkhorn_forward`). `backward` is one call that also forms the projection's
backward operands (∂projected·r and the norm's coefficient), so `hyper_fused_site` goes
straight to its GEMMs.

`site_backward` goes further: the site's whole backward — the stream mixing's, the maps'
(mhc: and Sinkhorn's) and the projection's — in one C pass, 16 tokens at a time (mhc: 32)
(`hyper_native_site.c`), so the site's streams and their gradient come from memory once, not
twice.

Covered: every per-token mix — dynamic hc, mhc, mhc_lite, kromhc, and shc up to four streams
(the closed-form Cayley map, as `hyper_maps._cayley`); shc with more streams keeps the torch
graph. Callers check `hyper_native.usable(...)` first; tests/library/test_hyper_site_native.py
checks values and every gradient against the torch maps.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from archc.library import hyper_native
from archc.library.hyper_maps import helmert

if TYPE_CHECKING:  # hyper_connections_modules imports this module (through hyper_fused_site)
    from archc.library.hyper_connections_modules import Connection

__all__ = ["supports", "fuses", "forward", "backward", "site_backward", "forwards_whole",
           "site_forward", "SPHERE_STREAMS",
           "EXPORT_STAND_IN"]

SPHERE_STREAMS = 4
"""shc's C maps cover up to this many streams (3×3 rotations in closed form)."""

_CODES = {"mhc": 0, "mhc_lite": 1, "kromhc": 2, "shc": 3}  # hyper_native_maps.c's MIX_*
_BLOCK = 16
"""Tokens per partial sum of the parameter gradients: fixed, so the sums do not depend on the
thread count (the blocks' rows are added in their order: by maps_into in C for the manifold
mixes, by one small torch sum for dynamic hc); hyper_native_site.c's PASS."""
_ROWS = 128
"""Tokens per partial sum of W's gradient in dynamic hc's `site_backward`: hyper_native_site.c's
BLOCK. (The manifold mixes' kernel keeps its scratch itself.)"""
_FORWARD_TOKENS = 6
"""Tokens per block of dynamic hc's `site_forward`: hyper_native_site_forward.c's TOKENS."""


def _tiles(flat: Tensor, tokens: int, depth: Depth | None) -> Tensor:
    """Each thread's streams of a pass or block of `tokens` tokens, which a kernel handed a
    depth connection forms there (threads, tokens·n·d); else a one-number stand-in."""
    if depth is None:
        return flat.new_zeros(1)
    return flat.new_empty(torch.get_num_threads(), tokens * flat[0].numel())


_STAND_IN = {dtype: torch.zeros(2, dtype=dtype) for dtype in (torch.float32, torch.float64)}
"""What the kernels get for an operand their mix or flags never touch (read or written): one
tensor a dtype, made once, not a fresh one a call."""
_ZERO = {dtype: torch.zeros((), dtype=dtype) for dtype in (torch.float32, torch.float64)}
"""The RMS projection's `mean` (it centres nothing), which the Function saves: never written."""

EXPORT_STAND_IN = hyper_native.NoNativeKernels  # model.py never calls this module


def supports(site: Connection) -> bool:
    """Whether the C maps cover this `Connection` (a per-token one)."""
    if site.mix == "mhc":
        return hyper_native.sinkhorn_fits(site.streams, int(site.iters))
    return site.mix != "shc" or site.streams <= SPHERE_STREAMS


def forward(site: Connection, projected: Tensor, params: tuple[Tensor, ...]
            ) -> tuple[Tensor, Tensor, Tensor, tuple[Any, ...]]:
    """(H_pre, H_res, H_post, state) for the site's projection, (B, c) or, dynamic hc, (B, n, c);
    `params` are `site._map_params()`, `state` what `backward` needs."""
    if site.mix == "hc":
        return _dynamic_forward(site, projected, params)
    return _manifold_forward(site, projected, params)


def backward(site: Connection, state: tuple[Any, ...], projected: Tensor, inv: Tensor,
             mean: Tensor, grads: tuple[Tensor, Tensor, Tensor], width: int
             ) -> tuple[tuple[Tensor, ...], list[Tensor | None]]:
    """The projection's backward operands (`hyper_fused_site.projection_operands` computes the
    same with torch ops) and the maps' parameter gradients, in `params` order, from ∂H_pre
    (B, n), ∂H_res (B, n, n) and ∂H_post (B, n). `inv` and `mean` are the projection's norm
    (1/rms or 1/σ, and μ for the layer norm); `width` the normalised length, n·d or d."""
    grad_pre, grad_res, grad_post = (g.contiguous() for g in grads)
    if site.mix == "hc":
        return _dynamic_backward(site, state, projected, inv, mean, grad_pre, grad_res,
                                 grad_post, width)
    return _manifold_backward(site, state, projected, inv, grad_pre, grad_res, grad_post, width)


def _manifold_forward(site: Connection, projected: Tensor, params: tuple[Tensor, ...]
                      ) -> tuple[Tensor, Tensor, Tensor, tuple[Any, ...]]:
    batch, c = projected.shape
    n, mix = site.streams, site.mix
    bias, scales = params[0], params[1]
    colscale = scales.detach()[site.group].contiguous()
    gammas = params[2].detach().contiguous() if mix == "shc" else projected.new_zeros(2)
    basis = _basis(n, projected.dtype) if mix == "shc" and n > 1 else projected.new_zeros(1)
    logits = torch.addcmul(bias.detach(), projected, colscale)  # (B, c)
    gates, rest = torch.sigmoid(logits), _rest(mix, n, logits)
    pre, post = projected.new_empty(batch, n), projected.new_empty(batch, n)
    # the C call forms H_res for kromhc and shc; mhc's and mhc_lite's come below
    res = projected.new_empty(batch, n, n) if mix in ("kromhc", "shc") else projected.new_zeros(1)
    hyper_native.call("manifold_forward", batch, n, c, _CODES[mix], gates, rest,
                      float(site._post_scale()), gammas, basis, pre, post, res)
    log = None
    if mix == "mhc":  # Sinkhorn's own kernel, in its (n, n, B) layout
        log = logits[:, 2 * n:].reshape(batch, n, n).permute(1, 2, 0).contiguous()
        res = hyper_native.sinkhorn_forward(log, int(site.iters)).permute(2, 0, 1).contiguous()
    elif mix == "mhc_lite":  # Σ_k q_k·P_k, one matmul as `hyper_maps.birkhoff`
        res = (rest @ site.perms.flatten(1)).view(batch, n, n)
    return pre, res, post, (gates, rest, colscale, gammas, basis, log)


def _rest(mix: str, n: int, logits: Tensor) -> Tensor:
    """What the mix's H_res takes of its logits (B, c - 2n), by torch's vectorised functions
    so that the C maps call none: mhc_lite's softmax; each KromHC pair's softmax, as
    σ(±(w₀ - w₁)) (softmax over a last axis of 2 takes torch 20 times longer); sHC's tanhs.
    mhc's Sinkhorn reads the logits themselves."""
    res = logits[:, 2 * n:]
    if mix == "mhc_lite":
        return torch.softmax(res, -1)
    if mix == "kromhc":
        gap = res[:, 0::2] - res[:, 1::2]
        return torch.stack((gap, -gap), -1).flatten(-2).sigmoid_()
    if mix == "shc":
        return torch.tanh(res)
    return logits.new_zeros(1)


def _manifold_backward(site: Connection, state: tuple[Any, ...], projected: Tensor, inv: Tensor,
                       grad_pre: Tensor, grad_res: Tensor, grad_post: Tensor, width: int
                       ) -> tuple[tuple[Tensor, ...], list[Tensor | None]]:
    gates, rest, colscale, gammas, basis, log = state
    batch, c = projected.shape
    n, mix = site.streams, site.mix
    if mix == "mhc":  # Sinkhorn's backward gives the res logits' gradient
        g = hyper_native.sinkhorn_backward(log, int(site.iters),
                                           grad_res.permute(1, 2, 0).contiguous())
        grad_res = g.permute(2, 0, 1).reshape(batch, n * n).contiguous()
    elif mix == "mhc_lite":  # ∂q = ∂H_res·Pᵀ
        grad_res = grad_res.view(batch, n * n) @ site.perms.flatten(1).T
    scaled, coef = torch.empty_like(projected), projected.new_empty(batch, 1)
    partial = projected.new_empty(-(-batch // _BLOCK), 2 * c + 2)
    hyper_native.call("manifold_backward", batch, n, c, _CODES[mix], projected, gates, rest,
                      colscale, float(site._post_scale()), gammas, basis, inv.contiguous(),
                      width, grad_pre, grad_post, grad_res, scaled, coef, _BLOCK, partial)
    return (scaled, coef), _manifold_grads(site, partial, c)


def _manifold_grads(site: Connection, partial: Tensor, c: int) -> list[Tensor | None]:
    """The maps' parameter gradients, in `params` order, from the blocks' sums (blocks,
    2c + 2) = [Σ ∂logits | Σ ∂logits·projected | ∂γ], added as `site_backward` adds them
    (hyper_native_transpose.c's maps_into)."""
    grads = partial.new_empty(c + site.scales.shape[0] + 2)
    hyper_native.call("maps_sums", partial.shape[0], c, site.scales.shape[0], partial,
                      site.group, grads)
    return _map_grads(site, grads, c)


def _map_grads(site: Connection, grads: Tensor, c: int) -> list[Tensor | None]:
    """The maps' parameter gradients, in `params` order, from [∂bias | ∂scales | ∂γ]."""
    bias, scales, gammas = grads.split([c, site.scales.shape[0], 2])
    # one-stream shc has no rotations: its gammas get no gradient, as in the torch graph
    return [bias, scales] + ([gammas if site.streams > 1 else None] if site.mix == "shc" else [])


def fuses(site: Connection) -> bool:
    """Whether `site_backward` covers this site's backward: every per-token mix `supports`
    covers (the others' maps run as their torch graph). Kept as its own switch: turned off, a
    site the C maps cover runs the three kernels (mixing, `backward`, the projection's C
    pass), the reference the one-pass kernel is tested and benchmarked against
    (tests/library/test_hyper_site_native.py, benchmarks/hyper_site_passes.py)."""
    return supports(site)


Depth = tuple[Tensor, Tensor]
"""The previous site's depth connection a site was handed: its H_post (P, n) and y (B, d)."""


def site_backward(site: Connection, state: tuple[Any, ...], flat: Tensor, proj: Tensor,
                  inv: Tensor, mean: Tensor, projected: Tensor, pre: Tensor, res: Tensor,
                  grad_x: Tensor, grad_mixed: Tensor, grad_post: Tensor,
                  depth: Depth | None = None
                  ) -> tuple[Tensor, Tensor, list[Tensor | None], tuple[Tensor, Tensor] | None]:
    """(∂h (B, n, d), ∂W, the maps' parameter gradients, the depth's) of a site that `fuses`
    covers, in one C pass (`hyper_native_site.c`): the stream mixing's backward, the maps' and
    the projection's, 16 tokens at a time, from streams `flat` (B, n, d), the per-token H_pre
    (B, n) and H_res (B, n, n) it mixed with, and the upstream ∂x, ∂mixed and ∂H_post. The
    same numbers as `hyper_fused.mix_streams_backward`, `backward` and the projection's C pass
    in turn (mhc_lite's ∂q and dynamic hc's ∂W up to rounding). Where the site's streams were
    the previous site's depth connection (`depth`), `flat` is that site's mixed, each pass
    forms h = mixed + post ⊗ y again, and the depth's backward comes from the pass's finished
    ∂h: (∂y (B, d), ∂post per token (B, n)) as `hyper_native.depth_backward`'s."""
    batch, n, d = flat.shape
    upstream = (grad_x.reshape(batch, d).contiguous(),
                grad_mixed.reshape(batch, n, d).contiguous(),
                grad_post.reshape(batch, n).contiguous())
    depth_grads = None
    if depth is None:  # the kernel reads no depth operand: stand-ins
        stand_in = _STAND_IN[flat.dtype]
        depth_args: tuple[Any, ...] = (0, stand_in, 0, stand_in, stand_in, stand_in)
    else:
        post, y = depth
        depth_grads = (flat.new_empty(batch, d), flat.new_empty(batch, n))
        depth_args = (1, post, hyper_native.token_stride(post, batch), y, *depth_grads)
    if site.mix == "hc":
        found = _dynamic_site_backward(site, state, flat, proj, inv, mean, projected, pre, res,
                                       upstream, depth_args, _tiles(flat, _BLOCK, depth))
    else:
        found = _manifold_site_backward(site, state, flat, proj, inv, projected, pre, res,
                                        upstream, depth_args)
    return (*found, depth_grads)


def _manifold_site_backward(site: Connection, state: tuple[Any, ...], flat: Tensor,
                            proj: Tensor, inv: Tensor, projected: Tensor, pre: Tensor,
                            res: Tensor, upstream: tuple[Tensor, Tensor, Tensor],
                            depth_args: tuple[Any, ...]
                            ) -> tuple[Tensor, Tensor, list[Tensor | None]]:
    gates, rest, colscale, gammas, basis, log = state
    (batch, n, d), c = flat.shape, projected.shape[1]
    stand_in = _STAND_IN[flat.dtype]
    perms, count, iters = stand_in, 1, 0
    if site.mix == "mhc_lite":
        perms, count = site.perms.view(-1, n * n), site.perms.shape[0]
    elif site.mix == "mhc":  # its logits' gradient (B, n²) takes ∂q's place
        count, iters = n * n, int(site.iters)
    scales = site.scales.shape[0]
    grad_h, grad_w, maps_grads = (torch.empty_like(flat), flat.new_empty(n * d, c),
                                  flat.new_empty(c + scales + 2))
    # the kernel keeps its own scratch: Wᵀ padded, the blocks' partial sums, the per-token
    # gradients of the maps (hyper_native_site.c)
    if hyper_native.call(
            "site_backward", batch, n, d, c, _CODES[site.mix], flat, pre, res, *upstream, perms,
            count, projected, gates, rest, colscale, float(site._post_scale()), gammas, basis,
            inv.contiguous(), proj.contiguous(), grad_h, grad_w, site.group, scales,
            maps_grads, *depth_args, log if log is not None else stand_in, iters):
        raise MemoryError("the site's backward could not allocate its scratch")
    return grad_h, grad_w, _map_grads(site, maps_grads, c)


def _dynamic_site_backward(site: Connection, state: tuple[Any, ...], flat: Tensor,
                           proj: Tensor, inv: Tensor, mean: Tensor, projected: Tensor,
                           pre: Tensor, res: Tensor, upstream: tuple[Tensor, Tensor, Tensor],
                           depth_args: tuple[Any, ...], tiles: Tensor
                           ) -> tuple[Tensor, Tensor, list[Tensor | None]]:
    t, scales = state
    (batch, n, d), c = flat.shape, projected.shape[-1]
    new, grad_h = flat.new_empty, torch.empty_like(flat)
    partial_maps = new(-(-batch // _BLOCK), 2 * n + n * n + 2 + c)
    # Wᵀ and the shift's row of ones, rows padded
    columns = hyper_native.padded_transpose(torch.cat((proj, proj.new_ones(d, 1)), 1))
    partial_w = new(-(-batch // _ROWS), c + 1, columns.shape[1])
    hyper_native.call("dynamic_site_backward", batch, n, d, int(bool(site.tanh)), flat, pre,
                      res, *upstream, t, projected, inv.contiguous(), mean.contiguous(),
                      proj.mean(0).contiguous(), scales, columns, columns.shape[1], grad_h,
                      partial_maps, partial_w, new(batch, n), new(batch, n, n),
                      new(batch * n, c + 1), new(batch * n), *depth_args, tiles)
    grad = hyper_native.summed_transpose(partial_w, d)  # (d, c + 1)
    grad_params, mean_scaled = _dynamic_grads(partial_maps, n, c)
    return grad_h, grad[:, :-1] - mean_scaled, grad_params


def forwards_whole(site: Connection) -> bool:
    """Whether `site_forward` covers this site's forward: every mix `supports` covers. Kept as
    its own switch: turned off, a site runs the projection's C pass, `forward` and the
    stream mixing in turn, the reference the one pass is tested and benchmarked against
    (tests/library/test_hyper_site_native.py, benchmarks/hyper_site_passes.py)."""
    return supports(site)


Forward = tuple[tuple[Tensor, Tensor, Tensor], tuple[Tensor, Tensor, Tensor], tuple[Any, ...],
                Tensor, Tensor]
"""`site_forward`'s answer: ((projected, inv, mean), (H_pre, H_res, H_post), the maps'
state, x, mixed)."""


def site_forward(site: Connection, flat: Tensor, proj: Tensor, params: tuple[Tensor, ...],
                 eps: float, depth: Depth | None = None) -> Forward:
    """A per-token site's whole forward in one C pass (`hyper_native_site_forward.c`), from
    streams `flat` (B, n, d) -- or, with `depth` (the previous site's post and y), that
    site's mixed: ((projected, inv, mean) as `hyper_fused_site._project`'s, (H_pre (B, n),
    H_res (B, n, n), H_post (B, n)), the maps' state as `forward`'s, x (B, d), mixed
    (B, n, d)); `eps` is the projection's norm's. The same numbers as the projection's C pass,
    `forward` and the stream mixing in turn, up to the rounding of tanh, σ and exp (C's
    here, torch's there)."""
    batch, n, d = flat.shape
    if depth is None:
        stand_in = _STAND_IN[flat.dtype]
        depth_args: tuple[Any, ...] = (0, stand_in, 0, stand_in)
    else:
        depth_args = (1, depth[0], hyper_native.token_stride(depth[0], batch), depth[1])
    new = flat.new_empty
    pre, res, post = new(batch, n), new(batch, n, n), new(batch, n)
    x, mixed = new(batch, d), torch.empty_like(flat)
    weights = proj.detach()
    if site.mix == "hc":
        c = n + 2
        pre0, res0, post0, scales = (p.detach().contiguous() for p in params)
        projected, t = new(batch, n, c), new(batch, n, c)
        inv, mean = new(batch, n, 1), new(batch, n, 1)
        mean_column = weights.new_full((d, 1), 1 / d)
        packed = hyper_native.packed_columns(torch.cat((weights, mean_column), 1))
        hyper_native.call("dynamic_site_forward", batch, n, d, int(bool(site.tanh)), flat,
                          *depth_args, packed.shape[1], packed, weights.sum(0).contiguous(), eps,
                          pre0, res0, post0, scales, projected, inv, mean, t, pre, res, post, x,
                          mixed, _tiles(flat, _FORWARD_TOKENS, depth))
        return (projected, inv, mean), (pre, res, post), (t, scales), x, mixed
    c, mix, stand_in = weights.shape[1], site.mix, _STAND_IN[flat.dtype]
    bias = params[0].detach().contiguous()
    gammas = params[2].detach().contiguous() if mix == "shc" else stand_in
    basis = _basis(n, flat.dtype) if mix == "shc" and n > 1 else stand_in
    perms, count = ((site.perms.view(-1, n * n), site.perms.shape[0]) if mix == "mhc_lite"
                    else (stand_in, 1))
    projected, gates, inv, colscale = new(batch, c), new(batch, c), new(batch, 1), new(c)
    rest = new(batch, c - 2 * n) if mix != "mhc" else stand_in
    log, res_t = (new(n, n, batch), new(n * n, batch)) if mix == "mhc" else (stand_in, stand_in)
    packed = hyper_native.packed_columns(weights)
    # the kernel forms each logit's scale (colscale) from the scales and their group, and
    # keeps its tiles of depth-formed streams itself
    if hyper_native.call(
            "manifold_site_forward", batch, n, d, c, _CODES[mix], flat, *depth_args,
            packed.shape[1], packed, eps, bias, params[1].detach(), site.group, colscale,
            float(site._post_scale()), gammas, basis, perms, count,
            int(site.iters) if mix == "mhc" else 0, projected, gates, inv, rest, log, res_t, pre,
            res, post, x, mixed):
        raise MemoryError("the site's forward could not allocate its tiles")
    state = (gates, rest, colscale, gammas, basis, log if mix == "mhc" else None)
    return (projected, inv, _ZERO[flat.dtype]), (pre, res, post), state, x, mixed


def _dynamic_forward(site: Connection, projected: Tensor, params: tuple[Tensor, ...]
                     ) -> tuple[Tensor, Tensor, Tensor, tuple[Any, ...]]:
    batch, n = projected.shape[:2]
    pre0, res0, post0, scales = (p.detach().contiguous() for p in params)
    t = torch.tanh(projected) if site.tanh else projected
    pre, post = projected.new_empty(batch, n), projected.new_empty(batch, n)
    res = projected.new_empty(batch, n, n)
    hyper_native.call("dynamic_forward", batch, n, t, pre0, res0, post0, scales, pre, res, post)
    return pre, res, post, (t, scales)


def _dynamic_backward(site: Connection, state: tuple[Any, ...], projected: Tensor, inv: Tensor,
                      mean: Tensor, grad_pre: Tensor, grad_res: Tensor, grad_post: Tensor,
                      width: int) -> tuple[tuple[Tensor, ...], list[Tensor | None]]:
    t, scales = state
    batch, n, c = projected.shape
    operand = projected.new_empty(batch * n, c + 1)
    coef = projected.new_empty(batch, n, 1)
    partial = projected.new_empty(-(-batch // _BLOCK), 2 * n + n * n + 2 + c)
    proj_mean = site.proj.detach().mean(0).contiguous()
    hyper_native.call("dynamic_backward", batch, n, width, int(bool(site.tanh)), t, projected,
                      inv.contiguous(), mean.contiguous(), proj_mean, scales, grad_pre,
                      grad_res, grad_post, operand, coef, _BLOCK, partial)
    grads, mean_scaled = _dynamic_grads(partial, n, c)
    return (operand, coef, mean_scaled), grads


def _dynamic_grads(partial: Tensor, n: int, c: int) -> tuple[list[Tensor | None], Tensor]:
    """Dynamic hc's parameter gradients, in `params` order, and Σ μ·∂out·r, from the blocks'
    sums (blocks, 2n + n² + 2 + c) = [∂pre | ∂res | ∂post | ∂s_α, ∂s_β | Σ μ·∂out·r]."""
    grad_pre0, grad_res0, grad_post0, grad_scales, mean_scaled = partial.sum(0).split(
        [n, n * n, n, 2, c])
    return [grad_pre0, grad_res0.view(n, n), grad_post0, grad_scales], mean_scaled


@functools.cache
def _basis(n: int, dtype: torch.dtype) -> Tensor:
    """shc's Helmert basis (n, n-1) in `dtype`, built once."""
    return helmert(n, torch.empty(0, dtype=dtype)).contiguous()
