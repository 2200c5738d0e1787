"""Parameterized hypercomplex layers: dense and convolutional layers with about 1/n the weights.

The weight is a sum of n Kronecker products, W = Σᵢ Aᵢ ⊗ Sᵢ, with learned n×n "algebra" matrices
Aᵢ and (out/n)×(in/n) blocks Sᵢ (for convolutions Sᵢ also has the kernel axes). With n = 4 and
the right Aᵢ this is the quaternion (Hamilton) product; learning Aᵢ generalises it to any n.
The weight is materialised, so compute is that of the dense layer; only parameters shrink:
n³ + out·in·(k^dim)/n (+ out for the bias). Both channel counts must be divisible by n.
Maths and the reference's pitfalls: research/blocks.md §10.

FLOPs: the dense layer's count per example plus building the weight, one einsum of
2·n·out·in·k^dim FLOPs per forward whatever the batch — so `flops` is exact for one example
alone (how archc's cost model and `require flops < …` count), and `flops_per_forward` names
the part a batch of b shares (b examples cost b·(flops − per_forward) + per_forward).

>>> PhmConv2d.signature.param("n").default
4
>>> h = Hyperparams({"out": 512, "n": 4, "bias": True})
>>> PhmLinear.params(h, TensorType((512,), "flat"))  # 4³ + 512·512/4 + 512 (dense: 262 656)
66112
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from archc.library.base import block, hp
from archc.library.convolution import PADDINGS, _conv_flops, _pads, _windows
from archc.library.tensor import Hyperparams, ShapeError, TensorType

if TYPE_CHECKING:
    from torch import nn

__all__: list[str] = []

_PHM = ("Zhang et al., Beyond Fully-Connected Layers with Quaternions (PHM), ICLR 2021, "
        "arXiv 2102.08597")
_PHC = ("Grassucci, Zhang, Comminiello, Parameterized Hypercomplex Convolutions (PHNN), "
        "IEEE TNNLS 2022, arXiv 2110.04176")

_N_DOC = "hypercomplex order n: divides both channel counts; parameters shrink ~n times"


def _divisible(h: Hyperparams, cin: int, name: str, what: str) -> None:
    if cin % h.n or h.out % h.n:
        raise ShapeError(f"{name} with n = {h.n} splits its {what} into n blocks, so n must "
                         f"divide both counts; got {cin} in and {h.out} out")


def _phm_params(h: Hyperparams, cin: int, cells: int) -> int:
    """n³ algebra entries, out·in·cells/n block entries, out biases."""
    return h.n ** 3 + h.out * cin * cells // h.n + (h.out if h.bias else 0)


def _build_flops(h: Hyperparams, fan_in: int) -> int:
    """The weight's einsum: a (n², n) by (n, out·fan_in/n²) matmul; with n = 1 there is nothing
    to sum and torch's einsum multiplies pointwise, which the flop counter does not count."""
    return 2 * h.n * h.out * fan_in if h.n > 1 else 0


class _PhmConv:
    """The rules shared by phm_conv1d and phm_conv2d (layout `layout`)."""

    layout = ""

    @classmethod
    def shape(cls, h: Hyperparams, x: TensorType) -> TensorType:
        name = cls.signature.name  # type: ignore[attr-defined]
        x.expect(cls.layout, block=name)
        _divisible(h, x.channels, name, "input and output channels")
        return _windows(x, h.k, h.stride, h.padding, name).with_channels(h.out)

    @staticmethod
    def params(h: Hyperparams, x: TensorType) -> int:
        return _phm_params(h, x.channels, h.k ** (len(x.shape) - 1))

    @classmethod
    def flops(cls, h: Hyperparams, x: TensorType) -> int:
        return _conv_flops(x.channels, h.k, cls.shape(h, x)) + cls.flops_per_forward(h, x)

    @staticmethod
    def flops_per_forward(h: Hyperparams, x: TensorType) -> int:
        return _build_flops(h, x.channels * h.k ** (len(x.shape) - 1))

    @staticmethod
    def build(h: Hyperparams, x: TensorType) -> nn.Module:
        from archc.library.phm_modules import PhmConv
        return PhmConv(len(x.shape) - 1, x.channels, h.out, h.n, h.k, h.stride,
                       _pads(h.k, h.padding), h.bias)


@block("phm_linear", cite=_PHM)
class PhmLinear:
    """A PHM dense layer over the last axis: (…, d) → (…, out)."""

    out = hp("int", doc="output features", low=1)
    n = hp("int", 4, doc=_N_DOC, low=1)
    bias = hp("bool", True, doc="learn an additive bias")

    @staticmethod
    def shape(h: Hyperparams, x: TensorType) -> TensorType:
        x.expect("flat", "seq", block="phm_linear")
        _divisible(h, x.last, "phm_linear", "input and output features")
        return x.with_last(h.out)

    @staticmethod
    def params(h: Hyperparams, x: TensorType) -> int:
        return _phm_params(h, x.last, 1)

    @staticmethod
    def flops(h: Hyperparams, x: TensorType) -> int:
        return 2 * x.positions * x.last * h.out + PhmLinear.flops_per_forward(h, x)

    @staticmethod
    def flops_per_forward(h: Hyperparams, x: TensorType) -> int:
        return _build_flops(h, x.last)

    @staticmethod
    def build(h: Hyperparams, x: TensorType) -> nn.Module:
        from archc.library.phm_modules import PhmLinear as Module
        return Module(x.last, h.out, h.n, h.bias)


@block("phm_conv1d", cite=_PHC)
class PhmConv1d(_PhmConv):
    """A PHC 1-D convolution: (b, c, t) → (b, out, t'); padding as in `conv1d`."""

    layout = "cl"

    out = hp("int", doc="output channels", low=1)
    n = hp("int", 4, doc=_N_DOC, low=1)
    k = hp("int", 3, doc="kernel size", low=1)
    stride = hp("int", 1, doc="step between kernel positions", low=1)
    padding = hp("str", "same", doc="same, valid or causal (see `conv1d`)",
                 options=(*PADDINGS, "causal"))
    bias = hp("bool", True, doc="learn a bias per output channel")


@block("phm_conv2d", cite=_PHC)
class PhmConv2d(_PhmConv):
    """A PHC 2-D convolution with a square kernel: (b, c, h, w) → (b, out, h', w')."""

    layout = "chw"

    out = hp("int", doc="output channels", low=1)
    n = hp("int", 4, doc=_N_DOC, low=1)
    k = hp("int", 3, doc="kernel size (k × k)", low=1)
    stride = hp("int", 1, doc="step between kernel positions, on both axes", low=1)
    padding = hp("str", "same", doc="same or valid (see `conv2d`)", options=PADDINGS)
    bias = hp("bool", True, doc="learn a bias per output channel")
