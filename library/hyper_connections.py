"""Hyper-connections: a residual network widened to n parallel residual streams.

`hyper(streams = n, mix = …) { body }` copies its input into n streams (b, t, s, d), runs every
hyper-connection site of the body with its own copy of the `mix`, and collapses the streams at
the end. A site is each `residual { … }` of the body and each bare layer at the body's top
level; at a site the mix reads the layer input as a weighted sum of the streams (H_pre), and
writes back H_res·X + H_postᵀ·layer(…) in place of the plain residual sum.

The mixes differ in how they keep H_res well behaved over depth (maths in research/blocks.md
§1–6): `hc` leaves it free, `mhc` projects it onto doubly-stochastic matrices with Sinkhorn
iterations, `mhc_lite` writes it exactly as a convex mix of the n! permutations, `kromhc` as a
Kronecker product of 2×2 doubly-stochastic factors (n a power of two), and `shc` keeps its
spectral norm exactly 1 through an orthogonal (Cayley) parametrisation. At initialisation every
mix is (close to) a plain pre-norm residual network; `hc` exactly: every stream equals the
residual state, so the `sum` collapse is n times it (HC's final norm removes the n).

Orientation (everywhere in archc): the papers'. Streams are (…, n, d) and H_res is (n, n) with
rows = output stream, columns = input stream: mixed_i = Σ_j H_res[i, j]·h_j.

The modules are in `hyper_connections_modules.py` (`Connection`, `depth_connection`,
`expand_streams`, `Collapse`); this file also holds their torch-free cost rules for the
compiler: `site_params` (exact, = Σ numel of a Connection), `site_flops` (Connection and
depth_connection, as torch's flop counter counts them), `collapse_params`, `collapse_flops`,
and `check_site`, whose ValueError says why a mix cannot take a number of streams.

>>> Mhc.signature.kind, Mhc.signature.param("iters").default
('mix', 20)
>>> HyperConnections.signature.param("mix").default
'hc'
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from archc.library.base import block, hp

__all__ = ["COLLAPSES", "MIXES", "MIX_BLOCKS", "check_site", "res_coefficients", "site_params",
           "site_flops", "collapse_params", "collapse_flops"]

COLLAPSES = ("sum", "head")
"""How n streams become one again: their sum (HC), or a learned sigmoid-gated sum (DeepSeek-V4)."""

_HC = "Zhu et al., Hyper-Connections, ICLR 2025, arXiv 2409.19606"
_MHC = "DeepSeek-AI, mHC: Manifold-Constrained Hyper-Connections, arXiv 2512.24880"
_MHC_LITE = "Yang, Gao, mHC-lite: You Don't Need 20 Sinkhorn-Knopp Iterations, arXiv 2601.05732"
_KROMHC = "Zhou, Gu, Iacovides, Mandic, KromHC, arXiv 2601.21579"
_SHC = "Liu, Zhang, Li, Spectral-Sphere-Constrained Hyper-Connections, arXiv 2603.20896"

_ALPHA_DOC = "initial scale of the input-dependent (dynamic) terms; learned"


@block("hyper", body=True, cite=_HC)
class HyperConnections:
    """Run the body on `streams` residual streams joined by hyper-connections (one `mix` per
    site; see the module docs). With one stream and `hc` this is a plain residual network."""

    streams = hp("int", 4, doc="expansion rate n: number of residual streams", low=1)
    mix = hp("block", "hc", doc="how each site reads and writes the streams", kind="mix")
    collapse = hp("str", "sum", doc="how the streams are merged at the end", options=COLLAPSES)


@block("hc", kind="mix", cite=_HC)
class Hc:
    """The original hyper-connection: learned H_pre, H_post and an unconstrained H_res, all
    initialised to the identity residual. `dynamic` adds per-token terms s·tanh(norm(X) W) (DHC);
    without it the mix is static (SHC), n(n + 2) parameters per site; with it d(n + 2) + 2 more
    (its per-stream norm has no parameters, as OLMo's in the paper)."""

    dynamic = hp("bool", False, doc="add input-dependent terms to the static matrices (DHC)")
    tanh = hp("bool", True, doc="squash the dynamic terms with tanh (the paper also runs without)")
    alpha = hp("float", 0.01, doc=_ALPHA_DOC, low=0, positive=True)


@block("mhc", kind="mix", cite=_MHC)
class Mhc:
    """Manifold-constrained HC: H_pre = σ(·), H_post = post_scale·σ(·), and H_res projected onto
    the doubly-stochastic matrices by `iters` Sinkhorn-Knopp normalisations of exp(·), so the
    residual stream neither grows nor vanishes with depth. Too few iterations leave large logits
    unconverged (blocks.md A.1). n·d(n² + 2n) + n² + 2n + 3 parameters per site."""

    iters = hp("int", 20, doc="Sinkhorn-Knopp iterations (alternate column/row normalisations)",
               low=1)
    alpha = hp("float", 0.01, doc=_ALPHA_DOC, low=0, positive=True)
    post_scale = hp("float", 2.0, doc="H_post = post_scale·sigmoid(·) (paper 2; TileKernels 1)",
                    low=0, positive=True)


@block("mhc_lite", kind="mix", cite=_MHC_LITE)
class MhcLite:
    """mHC with H_res an exact convex mix (a softmax) of all n! permutation matrices
    (Birkhoff-von Neumann): doubly stochastic with no iterations. n! coefficients per token, so
    keep streams ≤ 6 (n = 4: 24). n·d(n! + 2n) + n! + 2n + 3 parameters per site."""

    alpha = hp("float", 0.01, doc=_ALPHA_DOC, low=0, positive=True)


@block("kromhc", kind="mix", cite=_KROMHC)
class Kromhc:
    """mHC with H_res = U₁ ⊗ … ⊗ U_K, a Kronecker product of 2×2 doubly-stochastic factors, one
    softmax each: exact, O(n²C) parameters, but few degrees of freedom (2 at n = 4). The number of
    streams must be a power of two. n·d(2 log₂ n + 2n) + 2 log₂ n + 2n + 3 parameters."""

    alpha = hp("float", 0.01, doc=_ALPHA_DOC, low=0, positive=True)


@block("shc", kind="mix", cite=_SHC)
class Shc:
    """Spectral-sphere HC: H_res = J + U_z·U·diag(σ)·Vᵀ·U_zᵀ with Cayley rotations U, V and
    σ ∈ (-1, 1), so rows and columns sum to 1 and the spectral norm is exactly 1; entries may be
    negative. Solves one (n-1)×(n-1) system per token. n·d(2n + (n-1)²) + 2n + (n-1)² + 7
    parameters per site."""

    alpha = hp("float", 0.01, doc=_ALPHA_DOC, low=0, positive=True)
    gamma = hp("float", 1.0, doc="initial bound on the rotations' skew-symmetric entries; learned",
               low=0, positive=True)


# Costs of a site, for the compiler's cost model (torch-free) -------------------------------------

MIXES = ("hc", "mhc", "mhc_lite", "kromhc", "shc")
"""The mix blocks, in the order of the module docs."""

MAX_PERMUTATION_STREAMS = 6
"""mhc_lite materialises all n! permutations: 720 at n = 6, 5040 at n = 7 (too many)."""

SHC_SCALARS = 7
"""sHC's learned scalars: scales of pre, post, the two rotations and the values; two bounds γ."""


def check_site(mix: str, streams: int) -> None:
    """ValueError, in a sentence the compiler can show at the spec, if `mix` cannot join
    `streams` streams (unknown mix, too many permutations, not a power of two)."""
    if mix not in MIXES:
        raise ValueError(f"unknown hyper-connection mix {mix!r}; the mixes are "
                         f"{', '.join(MIXES)}")
    if streams < 1:
        raise ValueError(f"a hyper-connection needs at least one stream, got streams = {streams}")
    if mix == "mhc_lite" and streams > MAX_PERMUTATION_STREAMS:
        raise ValueError(
            f"mhc_lite mixes all n! permutation matrices: streams = {streams} would need "
            f"{math.factorial(streams)} coefficients per token; use streams ≤ "
            f"{MAX_PERMUTATION_STREAMS}, or mhc / kromhc / shc")
    if mix == "kromhc" and streams & (streams - 1):
        raise ValueError(
            f"kromhc builds H_res as a Kronecker product of 2×2 factors, so streams must be a "
            f"power of two (1, 2, 4, 8, …), got streams = {streams}")


def res_coefficients(mix: str, streams: int) -> int:
    """Per-token numbers that define H_res in the manifold mixes (columns of their projection):
    mhc n² logits, mhc_lite n! permutation logits, kromhc 2 per 2×2 factor, shc (n-1)² (two
    skew-symmetric triangles and n-1 singular values). `hc` has none (its H_res is direct)."""
    check_site(mix, streams)
    n = streams
    return {"hc": 0, "mhc": n * n, "mhc_lite": math.factorial(n),
            "kromhc": 2 * (n.bit_length() - 1), "shc": (n - 1) ** 2}[mix]


def site_params(mix: str, mix_hp: Mapping[str, Any], streams: int, dim: int) -> int:
    """The exact parameter count of one `Connection(mix, streams, dim, **mix_hp)`.

    hc: n(n+2) static (H_pre n, H_res n², H_post n), plus d(n+2) + 2 when dynamic (a
    parameter-free norm, as OLMo's in the paper). The manifold mixes project the RMS-normalised
    flat streams (n·d) to 2n + r logits, r = `res_coefficients`: n·d·(2n+r) weights, 2n+r biases
    and 3 scales (sHC: 7 scalars); the RMSNorm weight is absorbed into the projection (mHC paper
    §4.3), so the references' separate n·d norm weights are not counted.

    >>> site_params("hc", {}, 4, 512), site_params("hc", {"dynamic": True}, 4, 512)
    (24, 3098)
    >>> site_params("mhc", {}, 4, 512)  # the mHC paper's nC(n² + 2n) + n² + 2n + 3
    49179
    """
    n, r = streams, res_coefficients(mix, streams)
    if mix == "hc":
        dynamic = dim * (n + 2) + 2 if _hp(mix, mix_hp, "dynamic") else 0
        return n * (n + 2) + dynamic
    logits = 2 * n + r
    return n * dim * logits + logits + (SHC_SCALARS if mix == "shc" else 3)


def site_flops(mix: str, mix_hp: Mapping[str, Any], streams: int, dim: int, tokens: int) -> int:
    """FLOPs of one site, its Connection's forward and its `depth_connection`, on one example of
    `tokens` positions, as torch's flop counter counts them (2 × multiply-adds of matmuls; norms,
    Sinkhorn, softmax, solves, Kronecker products and the depth connection's broadcast
    multiply-add H_post ⊗ y are pointwise or uncounted). The width connection is two bmms,
    H_pre (1×n) and H_res (n×n) over the streams; the manifold mixes add their logit projection
    (and mhc_lite its permutation mix, kromhc its factor-choice mix, shc its rotations).

    >>> site_flops("hc", {}, 4, 256, 10)  # 10 · 2·n·d·(1 + n)
    102400
    """
    n, d, r = streams, dim, res_coefficients(mix, streams)
    width = 2 * (n + 1) * n * d
    if mix == "hc":
        dynamic = 2 * n * d * (n + 2) if _hp(mix, mix_hp, "dynamic") else 0
        return tokens * (width + dynamic)
    project = 2 * n * d * (2 * n + r)
    build = {"mhc_lite": 2 * r * n * n,  # softmax weights @ the (n!, n²) permutations
             "kromhc": 2 * n ** 3 if n > 1 else 0,  # n factor-choice weights @ (n, n²) basis
             "shc": 2 * ((n - 1) ** 3 + (n - 1) ** 2 * n * n)  # core, then U_z ⊗ U_z
             + (4 * (n - 1) ** 3 if 1 < n <= 4 else 0)  # hyper_maps._cayley's A·A, m ≤ 3
             }.get(mix, 0)
    return tokens * (width + project + build)


def collapse_params(how: str, streams: int, dim: int) -> int:
    """Parameters of `Collapse(streams, dim, how)`: none for `sum`; the `head` gate projects
    the normalised n·d streams to n gates, with n biases and one scale (DeepSeek-V4's head).

    >>> collapse_params("sum", 4, 8), collapse_params("head", 4, 8)
    (0, 133)
    """
    _check_collapse(how)
    return 0 if how == "sum" else streams * dim * streams + streams + 1


def collapse_flops(how: str, streams: int, dim: int, tokens: int) -> int:
    """FLOPs of one Collapse on one example, as torch's flop counter counts them: the head's
    projection (n·d → n) and its gated sum over the streams; a plain sum counts nothing."""
    _check_collapse(how)
    return 0 if how == "sum" else tokens * (2 * streams * dim * streams + 2 * streams * dim)


def _check_collapse(how: str) -> None:
    if how not in COLLAPSES:
        raise ValueError(f"unknown collapse {how!r}; the collapses are {', '.join(COLLAPSES)}")


def _hp(mix: str, mix_hp: Mapping[str, Any], name: str) -> Any:
    """Hyperparameter `name` of `mix` from `mix_hp`, or its declared default."""
    if name in mix_hp:
        return mix_hp[name]
    return MIX_BLOCKS[mix].signature.param(name).default  # type: ignore[attr-defined]


MIX_BLOCKS = {"hc": Hc, "mhc": Mhc, "mhc_lite": MhcLite, "kromhc": Kromhc, "shc": Shc}
"""The class declaring each mix block, by name (its `signature` lists the hyperparameters)."""
