"""The torch side of `hyper { }`: one `Connection` per site, `depth_connection`, stream
expansion and `Collapse`. Maths and references: research/blocks.md §1–6; the blocks and their
cost rules: `hyper_connections.py`.

Orientation (used everywhere, tests included): the paper's (HC §2, mHC Eq. 3). Streams are
h (..., n, d); H_res is (n, n) with rows = output stream and columns = input stream, so
mixed_i = Σ_j H_res[i, j]·h_j, i.e. `mixed = H_res @ h`; H_pre and H_post are n-vectors, the layer
input is x = Σ_j H_pre[j]·h_j and the site's output is mixed + H_post ⊗ layer(x). (The lucidrains
family stores the transpose, [source, target].)

A site's width connection is two bmms over the stream axis, x = H_pre·h and mixed = H_res·h,
with the matrices shared or per token, for every leading position at once (`hyper_fused.width`);
the per-token (dynamic) mixes first compute their small matrices from the streams with one
projection (while training, projection, maps and mixing run as one Function,
`hyper_fused_site`; `matrices(h)` gives the matrices alone). Parameters, for n streams of width d:

- `hc` static: H_pre (n,), H_res (n, n), H_post (n,) learned directly; initialised to H_pre =
  e_(layer mod n), H_res = I, H_post = 1 (HC Eq. 14). With streams that start as copies
  (`expand_streams`) every stream then equals the pre-norm residual state x + layer(x) exactly,
  at every depth, so `Collapse("sum")` returns n times it (HC's final norm removes the n).
  `dynamic` adds s·tanh(norm(h_j)·W) per stream j (DHC, Eqs. 10-13; norm parameter-free, W zero
  at init, so init is unchanged).
- `mhc`, `mhc_lite`, `kromhc`, `shc`: logits = α ⊙ (RMSNorm(vec h)·W) + b with W (n·d, 2n + r)
  zero at init (the RMSNorm weight absorbed into W, mHC §4.3): H_pre = σ(pre logits),
  H_post = post_scale·σ(post logits) (2 for all but mhc), and H_res from r logits by Sinkhorn,
  the n! permutations, 2×2 Kronecker factors or the Cayley spectral sphere. Biases start at
  H_pre = 1/n (the streams' mean), H_post = 1, H_res ≈ I (off-diagonal logits -8, Σ logits 4),
  so the network starts close to a plain residual one (the papers leave b's init open).

One stream: `hc` is exactly a residual connection; for the four manifold mixes H_res ≡ [[1]]
(nothing to mix; mhc's and mhc_lite's single logit gets no gradient, kromhc and shc have none),
and H_pre = σ(·) starts at 0.99 instead of 1.

>>> import torch
>>> site = Connection("mhc", streams=4, dim=8)
>>> x, mixed, post = site(expand_streams(torch.randn(2, 3, 8), 4))
>>> x.shape, mixed.shape, post.shape, depth_connection(mixed, post, x).shape
(torch.Size([2, 3, 8]), torch.Size([2, 3, 4, 8]), torch.Size([2, 3, 4]), torch.Size([2, 3, 4, 8]))
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from archc.library.hyper_connections import (
    COLLAPSES,
    SHC_SCALARS,
    check_site,
    res_coefficients,
)
from archc.library.hyper_fused import depth, depth_width, width
from archc.library.hyper_fused_site import (
    RMS_EPS,
    fused_site,
    fuses_depth,
    inv_rms,
    project_streams,
)
from archc.library.hyper_maps import birkhoff, kron_factors, permutation_matrices, spectral_sphere
from archc.library.hyper_sinkhorn import sinkhorn

__all__ = ["Connection", "depth_connection", "expand_streams", "Collapse", "RMS_EPS"]

_OFF_LOGIT = -8.0  # logit of the non-identity H_res terms at init (mHC-lite, KromHC references)
_VALUE_LOGIT = 4.0  # sHC: σ = tanh(4) = 0.9993 at init (the sHC reference)
_SCALES = {"shc": ("pre", "post", "rot_u", "rot_v", "values")}  # others: pre, post, res


class Connection(nn.Module):
    """One hyper-connection site: its parameters and the width connection.

    `mix` is one of `MIXES`; `mix_hp` that mix block's hyperparameters by name (missing ones take
    their declared defaults); `layer` (optional) picks the stream HC's H_pre starts on. Every
    argument is kept under its own name, so export can rebuild the module. `forward(h)` maps
    streams (..., n, d) to (x, mixed, post): the layer input x = H_pre·h (..., d), mixed = H_res·h
    (..., n, d), and the H_post weights, (n,) for static hc and (..., n) otherwise.
    `forward(mixed, post, y)` takes the previous site's outputs instead, its streams being
    `depth_connection(mixed, post, y)`: the compiler hands each site its predecessor's depth
    connection (`compiler.passes.fuse_depth_into_width`), and static hc computes the two in one
    pass each way (`hyper_fused.depth_width`) without storing the streams between the sites.
    """

    # the mix blocks' hyperparameters (each mix sets its own) and the manifold mixes' buffers
    dynamic: bool
    tanh: bool
    alpha: float
    iters: int
    post_scale: float
    gamma: float
    group: Tensor
    perms: Tensor

    def __init__(self, mix: str, streams: int, dim: int, *, layer: int = 0,
                 **mix_hp: Any) -> None:
        super().__init__()
        check_site(mix, streams)
        declared = _declared(mix)
        unknown = sorted(set(mix_hp) - set(declared))
        if unknown:
            raise ValueError(f"{mix} has no hyperparameter {', '.join(unknown)}; it takes "
                             f"{', '.join(declared) or 'none'}")
        self.mix, self.streams, self.dim, self.layer = mix, streams, dim, layer
        for name, default in declared.items():
            setattr(self, name, mix_hp.get(name, default))
        if mix == "hc":
            self._init_hc()
        else:
            self._init_manifold()

    def _init_hc(self) -> None:
        n, d = self.streams, self.dim
        self.pre = nn.Parameter(F.one_hot(torch.tensor(self.layer % n), n).float())
        self.res = nn.Parameter(torch.eye(n))
        self.post = nn.Parameter(torch.ones(n))
        if self.dynamic:
            self.proj = nn.Parameter(torch.zeros(d, n + 2))  # columns: pre, post, res (n)
            self.scales = nn.Parameter(torch.full((2,), float(self.alpha)))  # s_α, s_β

    def _init_manifold(self) -> None:
        n, r = self.streams, res_coefficients(self.mix, self.streams)
        names = _SCALES.get(self.mix, ("pre", "post", "res"))
        group = [0] * n + [1] * n + {"shc": _shc_groups(n)}.get(self.mix, [2] * r)
        self.register_buffer("group", torch.tensor(group), persistent=False)
        self.proj = nn.Parameter(torch.zeros(n * self.dim, 2 * n + r))
        self.bias = nn.Parameter(torch.cat((
            torch.full((n,), _logit(1 / n)),
            torch.full((n,), _logit(1 / self._post_scale())),
            _res_bias(self.mix, n))))
        self.scales = nn.Parameter(torch.full((len(names),), float(self.alpha)))
        if self.mix == "shc":
            self.gammas = nn.Parameter(torch.full((SHC_SCALARS - len(names),),
                                                  float(self.gamma)))
        if self.mix == "mhc_lite":
            self.register_buffer("perms", permutation_matrices(n), persistent=False)

    def _post_scale(self) -> float:
        return float(self.post_scale) if self.mix == "mhc" else 2.0

    @property
    def per_token(self) -> bool:
        """Whether the matrices are computed per position from the streams (all but static hc)."""
        return self.mix != "hc" or bool(self.dynamic)

    def forward(self, h: Tensor, post: Tensor | None = None, y: Tensor | None = None
                ) -> tuple[Tensor, Tensor, Tensor]:  # (..., n, d)
        training = (self.per_token and torch.is_grad_enabled()
                    and not torch.compiler.is_compiling())
        depth = None
        if post is not None and y is not None:  # handed the previous site's depth connection
            if not self.per_token and _one_float_dtype(h, post, y, self.pre):
                x, mixed = depth_width(h, post, y, self.pre, self.res)  # one pass each way
                return x, mixed, self.post
            if training and fuses_depth(h, self.proj, post, y):
                depth = (post, y)  # formed and differentiated in the site's own C passes
            else:
                h = depth_connection(h, post, y)
        if training:
            kind, maps = self._maps()  # h's gradient built in one buffer
            return fused_site(h, self.proj, kind, maps, self._map_params(), self, depth)
        pre, res, post = self.matrices(h)
        x, mixed = width(h, pre, res)  # one bmm each for H_pre·h and H_res·h
        return x, mixed, post

    def matrices(self, h: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """H_pre, H_res and H_post at streams h (..., n, d): the learned (n,), (n, n), (n,) for
        static hc, else per position (..., n), (..., n, n), (..., n)."""
        if not self.per_token:
            return self.pre, self.res, self.post
        kind, maps = self._maps()
        return maps(project_streams(h, self.proj, kind), *self._map_params())

    def _maps(self) -> tuple[str, Callable[..., tuple[Tensor, Tensor, Tensor]]]:
        """The projection a per-token mix reads the streams with, and its maps to matrices."""
        return ("layer", self._dynamic_hc) if self.mix == "hc" else ("rms", self._manifold)

    def _map_params(self) -> tuple[Tensor, ...]:
        """The parameters the maps from projection to matrices use, in their argument order."""
        if self.mix == "hc":
            return self.pre, self.res, self.post, self.scales
        return (self.bias, self.scales, self.gammas) if self.mix == "shc" else (
            self.bias, self.scales)

    def _dynamic_hc(self, dyn: Tensor, pre: Tensor, res: Tensor, post: Tensor, scales: Tensor
                    ) -> tuple[Tensor, Tensor, Tensor]:
        """DHC: each stream j adds s·tanh(norm(h_j)·W) to its column of the static matrices;
        `dyn` = norm(h_j)·W per stream, (..., n, n + 2)."""
        if self.tanh:
            dyn = torch.tanh(dyn)
        s_alpha, s_beta = scales[0], scales[1]
        return (pre + s_alpha * dyn[..., 0],  # (..., n)
                res + s_alpha * dyn[..., 2:].transpose(-1, -2),  # (..., n, n): column j ← h_j
                post + s_beta * dyn[..., 1])  # (..., n)

    def _manifold(self, projected: Tensor, bias: Tensor, scales: Tensor,
                  gammas: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """mHC's kernel form (the RMSNorm divides after the projection, mHC Eqs. 14-19):
        `projected` = vec h·W / rms(vec h), (..., 2n + r)."""
        n = self.streams
        logits = torch.addcmul(bias, projected, scales[self.group])
        pre = torch.sigmoid(logits[..., :n])
        post = self._post_scale() * torch.sigmoid(logits[..., n:2 * n])
        coefficients = logits[..., 2 * n:]
        if self.mix == "mhc":
            res = sinkhorn(coefficients.unflatten(-1, (n, n)), int(self.iters))
        elif self.mix == "mhc_lite":
            res = birkhoff(coefficients, self.perms)
        elif self.mix == "kromhc":
            res = kron_factors(coefficients)
        else:
            assert gammas is not None, "shc passes its gammas"
            res = spectral_sphere(coefficients, gammas, n)
        return pre, res, post


def depth_connection(mixed: Tensor, post: Tensor, y: Tensor) -> Tensor:
    """A site's output: mixed + H_post ⊗ y, (..., n, d), from mixed (..., n, d), post (n,) or
    (..., n) and the layer output y (..., d): one pass forward, two bmm backward
    (`hyper_fused.depth`). Promoted like the formula (a pruned layer's zeros may come as
    integers)."""
    dtype = torch.promote_types(torch.promote_types(mixed.dtype, post.dtype), y.dtype)
    return depth(mixed.to(dtype), post.to(dtype), y.to(dtype))


def _one_float_dtype(*tensors: Tensor) -> bool:
    """Whether the tensors share one floating dtype (else `depth_connection` promotes first)."""
    return tensors[0].is_floating_point() and all(t.dtype == tensors[0].dtype for t in tensors)


def expand_streams(x: Tensor, streams: int) -> Tensor:
    """n copies of x as streams: (..., d) → (..., n, d) (HC's H⁰, as every paper does)."""
    return x.unsqueeze(-2).expand(*x.shape[:-1], streams, x.shape[-1]).contiguous()


class Collapse(nn.Module):
    """Merge n streams (..., n, d) into one (..., d): `sum` adds them (HC, mHC); `head` is
    DeepSeek-V4's learned gate, Σ_i g_i·h_i with g = σ(s·RMSNorm(vec h)·W + b), W zero and
    σ(b) = 1/n at init (the streams' mean; σ(0) = ½ for one stream)."""

    def __init__(self, streams: int, dim: int, how: str) -> None:
        super().__init__()
        if how not in COLLAPSES:
            raise ValueError(f"unknown collapse {how!r}; the collapses are {', '.join(COLLAPSES)}")
        self.streams, self.dim, self.how = streams, dim, how
        if how == "head":
            n = streams
            self.proj = nn.Parameter(torch.zeros(n * dim, n))
            self.bias = nn.Parameter(torch.full((n,), _logit(1 / n) if n > 1 else 0.0))
            self.scale = nn.Parameter(torch.ones(1))

    def forward(self, h: Tensor, post: Tensor | None = None, y: Tensor | None = None
                ) -> Tensor:  # (..., n, d)
        """Handed the last site's depth connection (`compiler.passes.fuse_depth_into_collapse`),
        h is its mixed and the streams are mixed + post ⊗ y: `sum` adds them as
        Σ_j mixed_j + (Σ_j post_j)·y, one read of mixed where forming the streams first writes
        and reads them again (and their gradient, n stride-0 copies of ∂out, needs no depth
        backward); `head` forms them, since its gates read them."""
        if post is not None and y is not None:
            if self.how == "sum":
                dtype = torch.promote_types(torch.promote_types(h.dtype, post.dtype), y.dtype)
                return h.to(dtype).sum(-2) + post.to(dtype).sum(-1, keepdim=True) * y.to(dtype)
            h = depth_connection(h, post, y)
        if self.how == "sum":
            return h.sum(-2)
        flat = h.flatten(-2)
        gates = torch.sigmoid(torch.addcmul(self.bias, flat @ self.proj,
                                            inv_rms(flat) * self.scale))
        return (gates.unsqueeze(-2) @ h).squeeze(-2)  # (..., d)


def _declared(mix: str) -> dict[str, Any]:
    """The mix block's hyperparameters and their defaults, in declaration order."""
    return dict(MIX_DEFAULTS[mix])


MIX_DEFAULTS: dict[str, dict[str, Any]] = {
    "hc": {"dynamic": False, "tanh": True, "alpha": 0.01},
    "mhc": {"iters": 20, "alpha": 0.01, "post_scale": 2.0},
    "mhc_lite": {"alpha": 0.01},
    "kromhc": {"alpha": 0.01},
    "shc": {"alpha": 0.01, "gamma": 1.0},
}
"""The mix blocks' declared hyperparameters and defaults (`MIX_BLOCKS[mix].signature`) as a
literal, so that an exported model.py, which copies this module's code, needs no signature
(tests/compiler/test_hyper_export.py checks that the two agree)."""


def _logit(p: float) -> float:
    """σ⁻¹(p), with p capped at 0.99 (one stream, or post_scale ≤ 1, cannot reach 1 exactly)."""
    p = min(p, 0.99)
    return math.log(p / (1 - p))


def _res_bias(mix: str, n: int) -> Tensor:
    """Initial H_res logits: the identity favoured by 8 nats (sHC: U = V = I, σ = tanh 4)."""
    if mix == "mhc":
        return torch.full((n, n), _OFF_LOGIT).fill_diagonal_(0.0).flatten()
    if mix == "mhc_lite":
        return torch.cat((torch.zeros(1), torch.full((math.factorial(n) - 1,), _OFF_LOGIT)))
    if mix == "kromhc":
        return torch.tensor([0.0, _OFF_LOGIT]).repeat(n.bit_length() - 1)
    k = (n - 1) * (n - 2) // 2
    return torch.cat((torch.zeros(2 * k), torch.full((max(n - 1, 0),), _VALUE_LOGIT)))


def _shc_groups(n: int) -> list[int]:
    """sHC's scale of each res logit: rot_u (k), rot_v (k), values (n-1)."""
    k = (n - 1) * (n - 2) // 2
    return [2] * k + [3] * k + [4] * max(n - 1, 0)

