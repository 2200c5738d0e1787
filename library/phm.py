"""Parameterized hypercomplex layers: dense and convolutional layers with about 1/n the weights.

The weight is a sum of n Kronecker products, W = Σᵢ Aᵢ ⊗ Sᵢ, with learned n×n "algebra" matrices
Aᵢ and (out/n)×(in/n) blocks Sᵢ (for convolutions Sᵢ also has the kernel axes). With n = 4 and
the right Aᵢ this is the quaternion (Hamilton) product; learning Aᵢ generalises it to any n.
The weight is materialised, so compute is that of the dense layer; only parameters shrink:
n³ + out·in·(k^dim)/n (+ out for the bias). Both channel counts must be divisible by n.
Maths and the reference's pitfalls: research/blocks.md §10.

>>> PhmConv2d.signature.param("n").default
4
"""

from __future__ import annotations

from archc.library.base import block, hp
from archc.library.convolution import PADDINGS

__all__: list[str] = []

_PHM = ("Zhang et al., Beyond Fully-Connected Layers with Quaternions (PHM), ICLR 2021, "
        "arXiv 2102.08597")
_PHC = ("Grassucci, Zhang, Comminiello, Parameterized Hypercomplex Convolutions (PHNN), "
        "IEEE TNNLS 2022, arXiv 2110.04176")

_N_DOC = "hypercomplex order n: divides both channel counts; parameters shrink ~n times"


@block("phm_linear", cite=_PHM)
class PhmLinear:
    """A PHM dense layer over the last axis: (…, d) → (…, out)."""

    out = hp("int", doc="output features", low=1)
    n = hp("int", 4, doc=_N_DOC, low=1)
    bias = hp("bool", True, doc="learn an additive bias")


@block("phm_conv1d", cite=_PHC)
class PhmConv1d:
    """A PHC 1-D convolution: (b, c, t) → (b, out, t'); padding as in `conv1d`."""

    out = hp("int", doc="output channels", low=1)
    n = hp("int", 4, doc=_N_DOC, low=1)
    k = hp("int", 3, doc="kernel size", low=1)
    stride = hp("int", 1, doc="step between kernel positions", low=1)
    padding = hp("str", "same", doc="same, valid or causal (see `conv1d`)",
                 options=(*PADDINGS, "causal"))
    bias = hp("bool", True, doc="learn a bias per output channel")


@block("phm_conv2d", cite=_PHC)
class PhmConv2d:
    """A PHC 2-D convolution with a square kernel: (b, c, h, w) → (b, out, h', w')."""

    out = hp("int", doc="output channels", low=1)
    n = hp("int", 4, doc=_N_DOC, low=1)
    k = hp("int", 3, doc="kernel size (k × k)", low=1)
    stride = hp("int", 1, doc="step between kernel positions, on both axes", low=1)
    padding = hp("str", "same", doc="same or valid (see `conv2d`)", options=PADDINGS)
    bias = hp("bool", True, doc="learn a bias per output channel")
