"""Hyper-kernels: convolution kernels written by a small "slow" network, per input.

A slow net (a multiplicative-filter coordinate MLP over a grid c ∈ [-1, 1]^dim) generates a kernel
K; the HyperZ·Z·W operator multiplies it by the input Z itself (Z·W, a context-dependent fast
weight) and applies the result back to Z — "HyperZ·Z·W". A `global` kernel spans the whole input
(its size is fixed by the input's length or image side, and a 2-D input must be square); a
`local` kernel is k wide and used as a depthwise convolution followed by a 1×1 channel mixer.
`terminator` is the paper's multi-branch block (SFNE): global, local and gated branches side by
side, concatenated, then a 1×1 bottleneck, group-wise batch/instance norm, GELU and dropout.
Maths, parameter counts and the reference's pitfalls: research/blocks.md §8.

`mip` switches the slow net to a Magnitude Invariant Parametrization (blocks.md §11): the
coordinates, rescaled to [0, 1], enter as [cos(πc/2), sin(πc/2)] (constant norm), and the
kernel is a learned base kernel plus the slow net's output, K = K₀ + ΔK. It is our combination
of the two papers, not part of the Terminator reference.

>>> Terminator.signature.param("mip").default
False
"""

from __future__ import annotations

from archc.library.base import block, hp

__all__: list[str] = []

_HYPERZZW = "Zhang, HyperZ·Z·W Operator Connects Slow-Fast Networks, arXiv 2401.17948"
_MIP_DOC = ("generate kernels with Magnitude Invariant Parametrization (Ortiz, Guttag, Dalca, "
            "ICLR 2024, arXiv 2304.07645)")


@block("hyperzzw", cite=_HYPERZZW)
class Hyperzzw:
    """One HyperZ·Z·W operator, channels first: (b, c, t) for dim 1, (b, c, h, w) for dim 2;
    the output has the input's shape."""

    dim = hp("int", 2, doc="spatial axes of the input: 1 (sequences) or 2 (images)", low=1, high=2)
    scope = hp("str", "global", doc="kernel spans the whole input, or is k wide",
               options=("global", "local"))
    k = hp("int", 3, doc="size of a local kernel (odd)", low=1)
    hidden = hp("int", 32, doc="hidden width of the slow net", low=1)
    layers = hp("int", 2, doc="multiplicative-filter layers of the slow net", low=1)
    mip = hp("bool", False, doc=_MIP_DOC)


@block("terminator", cite=_HYPERZZW)
class Terminator:
    """The Terminator (SFNE) block: global, local and hyper-interaction branches over the input,
    concatenated, then a 1×1 bottleneck to `bottleneck` × c channels. No residual connection.
    Local branch i uses kernel size k + 2i (the reference: 3, 5, 7, 9); the global slow net is
    twice as wide as the local ones (64 vs 32 in the reference)."""

    bottleneck = hp("int", 2, doc="output channels over input channels (reference: 4, 3, 2, 2, 2)",
                    low=1)
    dim = hp("int", 2, doc="spatial axes of the input: 1 (sequences) or 2 (images)", low=1, high=2)
    k = hp("int", 3, doc="smallest local kernel size (odd)", low=1)
    local_branches = hp("int", 4, doc="number of local branches", low=0)
    hidden = hp("int", 32, doc="hidden width of the local slow nets", low=1)
    dropout = hp("float", 0.0, doc="channel dropout after the bottleneck", low=0, high=1)
    mip = hp("bool", False, doc=_MIP_DOC)
