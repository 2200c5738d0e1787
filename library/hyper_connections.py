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
mix is (close to) a plain pre-norm residual network.

>>> Mhc.signature.kind, Mhc.signature.param("iters").default
('mix', 20)
>>> HyperConnections.signature.param("mix").default
'hc'
"""

from __future__ import annotations

from archc.library.base import block, hp

__all__ = ["COLLAPSES"]

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
    without it the mix is static (SHC), n(n + 2) parameters per site."""

    dynamic = hp("bool", False, doc="add input-dependent terms to the static matrices (DHC)")
    tanh = hp("bool", True, doc="squash the dynamic terms with tanh (the paper also runs without)")
    alpha = hp("float", 0.01, doc=_ALPHA_DOC, low=0, positive=True)


@block("mhc", kind="mix", cite=_MHC)
class Mhc:
    """Manifold-constrained HC: H_pre = σ(·), H_post = post_scale·σ(·), and H_res projected onto
    the doubly-stochastic matrices by `iters` Sinkhorn-Knopp normalisations of exp(·), so the
    residual stream neither grows nor vanishes with depth. Too few iterations leave large logits
    unconverged (blocks.md A.1)."""

    iters = hp("int", 20, doc="Sinkhorn-Knopp iterations (alternate column/row normalisations)",
               low=1)
    alpha = hp("float", 0.01, doc=_ALPHA_DOC, low=0, positive=True)
    post_scale = hp("float", 2.0, doc="H_post = post_scale·sigmoid(·) (paper 2; TileKernels 1)",
                    low=0, positive=True)


@block("mhc_lite", kind="mix", cite=_MHC_LITE)
class MhcLite:
    """mHC with H_res an exact convex mix (a softmax) of all n! permutation matrices
    (Birkhoff-von Neumann): doubly stochastic with no iterations. n! coefficients per token, so
    keep streams ≤ 6 (n = 4: 24)."""

    alpha = hp("float", 0.01, doc=_ALPHA_DOC, low=0, positive=True)


@block("kromhc", kind="mix", cite=_KROMHC)
class Kromhc:
    """mHC with H_res = U₁ ⊗ … ⊗ U_K, a Kronecker product of 2×2 doubly-stochastic factors, one
    softmax each: exact, O(n²C) parameters, but few degrees of freedom (2 at n = 4). The number of
    streams must be a power of two."""

    alpha = hp("float", 0.01, doc=_ALPHA_DOC, low=0, positive=True)


@block("shc", kind="mix", cite=_SHC)
class Shc:
    """Spectral-sphere HC: H_res = J + U_z·U·diag(σ)·Vᵀ·U_zᵀ with Cayley rotations U, V and
    σ ∈ (-1, 1), so rows and columns sum to 1 and the spectral norm is exactly 1; entries may be
    negative. Solves one (n-1)×(n-1) system per token, in float32."""

    alpha = hp("float", 0.01, doc=_ALPHA_DOC, low=0, positive=True)
    gamma = hp("float", 1.0, doc="initial bound on the rotations' skew-symmetric entries; learned",
               low=0, positive=True)
