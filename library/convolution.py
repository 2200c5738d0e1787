"""Convolutions and pooling, 1-D (b, c, t) and 2-D (b, c, h, w), channels first.

Padding is named, not counted, so a spec states intent and the shape rule does the arithmetic.
`same` pads k - 1 cells per axis, (k - 1) // 2 before and k // 2 after, so the output has
⌈t / stride⌉ positions for every k: an odd k pads k // 2 on each side (as NAS-Bench-201 and
ResNet do), an even k puts the extra cell after (as torch's `padding="same"` does), so
`max_pool(k = 2, stride = 2)` halves a length, rounding up. `valid` pads nothing, giving
⌊(t - k) / stride⌋ + 1 positions, and `causal` (1-D only) pads k - 1 before, so no output sees a
later input. The pooling defaults (k = 3, stride 1, same) keep the shape, as NAS-Bench-201's
`avg_pool_3x3` does, so `avg_pool(k = 3)` can stand on a cell edge.

FLOPs are those of torch's flop counter: 2 · output elements · (c_in / groups) · kᵈ per
convolution; biases, norms, activations and pools count nothing. The modules live in
`convolution_modules.py`, imported by `build` only (this file never imports torch).

>>> Conv2d.signature.params[0].name  # conv2d(32, k = 3): the first positional is `out`
'out'
>>> Conv1d.signature.param("padding").problem("causal") is None
True
>>> h = Hyperparams({"k": 2, "stride": 2, "padding": "same"})
>>> str(MaxPool.shape(h, TensorType((8, 5, 5), "chw")))
'float[8, 3, 3] (chw)'
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from archc.library.base import ParameterFree, block, hp
from archc.library.tensor import Hyperparams, ShapeError, TensorType

if TYPE_CHECKING:
    from torch import nn

__all__ = ["PADDINGS"]

PADDINGS = ("same", "valid")
"""How convolutions and pools pad; 1-D convolutions also allow `causal`."""

_LECUN = "LeCun et al., Gradient-Based Learning Applied to Document Recognition, Proc. IEEE 1998"
_NB201 = "Dong, Yang, NAS-Bench-201, ICLR 2020, arXiv 2001.00326"
_SPATIAL = ("cl", "chw")


def _pads(k: int, padding: str) -> tuple[int, int]:
    """(before, after) padding of each spatial axis."""
    return {"same": ((k - 1) // 2, k // 2), "valid": (0, 0), "causal": (k - 1, 0)}[padding]


def _windows(x: TensorType, k: int, stride: int, padding: str, name: str) -> TensorType:
    """The type after sliding a k-wide window with `stride` and `padding` over every spatial
    axis of `x` (channels unchanged)."""
    padded = sum(_pads(k, padding))
    if min(x.shape[1:]) + padded < k:
        raise ShapeError(f"{name} with k = {k} and {padding} padding needs at least "
                         f"{k - padded} positions per axis, got {x}")
    sizes = tuple((n + padded - k) // stride + 1 for n in x.shape[1:])
    return TensorType((x.channels, *sizes), x.layout)


def _conv_shape(h: Hyperparams, x: TensorType, name: str) -> TensorType:
    if x.channels % h.groups or h.out % h.groups:
        raise ShapeError(f"{name} with groups = {h.groups} needs channel counts divisible by "
                         f"it, got {x.channels} in and {h.out} out")
    return _windows(x, h.k, h.stride, h.padding, name).with_channels(h.out)


def _conv_params(cin: int, cout: int, k: int, x: TensorType, groups: int = 1,
                 bias: bool = False) -> int:
    return cout * (cin // groups) * k ** (len(x.shape) - 1) + (cout if bias else 0)


def _conv_flops(cin: int, k: int, y: TensorType, groups: int = 1) -> int:
    """Twice the multiply-adds of a convolution producing `y`: one per output element, input
    channel of its group and kernel cell."""
    return 2 * y.numel * (cin // groups) * k ** (len(y.shape) - 1)


class _Conv:
    """The rules shared by conv1d and conv2d (`nd` spatial axes, layout `layout`)."""

    layout = ""

    @classmethod
    def shape(cls, h: Hyperparams, x: TensorType) -> TensorType:
        name = cls.signature.name  # type: ignore[attr-defined]
        x.expect(cls.layout, block=name)
        return _conv_shape(h, x, name)

    @staticmethod
    def params(h: Hyperparams, x: TensorType) -> int:
        return _conv_params(x.channels, h.out, h.k, x, h.groups, h.bias)

    @classmethod
    def flops(cls, h: Hyperparams, x: TensorType) -> int:
        return _conv_flops(x.channels, h.k, cls.shape(h, x), h.groups)

    @staticmethod
    def build(h: Hyperparams, x: TensorType) -> nn.Module:
        from archc.library.convolution_modules import make_conv
        return make_conv(len(x.shape) - 1, x.channels, h.out, h.k, h.stride,
                         _pads(h.k, h.padding), h.groups, h.bias)


@block("conv1d", cite=_LECUN)
class Conv1d(_Conv):
    """A 1-D convolution over the last axis: (b, c, t) → (b, out, t')."""

    layout = "cl"
    out = hp("int", doc="output channels", low=1)
    k = hp("int", 3, doc="kernel size", low=1)
    stride = hp("int", 1, doc="step between kernel positions", low=1)
    padding = hp("str", "same", doc="same, valid or causal (see the module docs)",
                 options=(*PADDINGS, "causal"))
    groups = hp("int", 1, doc="channel groups; must divide both channel counts", low=1)
    bias = hp("bool", True, doc="learn a bias per output channel")


@block("conv2d", cite=_LECUN)
class Conv2d(_Conv):
    """A 2-D convolution with a square kernel: (b, c, h, w) → (b, out, h', w')."""

    layout = "chw"
    out = hp("int", doc="output channels", low=1)
    k = hp("int", 3, doc="kernel size (k × k)", low=1)
    stride = hp("int", 1, doc="step between kernel positions, on both axes", low=1)
    padding = hp("str", "same", doc="same or valid (see the module docs)", options=PADDINGS)
    groups = hp("int", 1, doc="channel groups; must divide both channel counts", low=1)
    bias = hp("bool", True, doc="learn a bias per output channel")


@block("conv_bn_relu", cite=_NB201)
class ConvBnRelu:
    """NAS-Bench-201's convolution op, ReLU → conv (same padding, no bias) → batchnorm, in 1-D or
    2-D after the input. The name lists the parts; the order is ReLU first, as in the benchmark."""

    out = hp("int", 0, doc="output channels (0: as many as the input has)", low=0)
    k = hp("int", 3, doc="kernel size", low=1)
    stride = hp("int", 1, doc="step between kernel positions", low=1)

    @staticmethod
    def shape(h: Hyperparams, x: TensorType) -> TensorType:
        x.expect(*_SPATIAL, block="conv_bn_relu")
        return _windows(x, h.k, h.stride, "same", "conv_bn_relu").with_channels(
            h.out or x.channels)

    @staticmethod
    def params(h: Hyperparams, x: TensorType) -> int:
        out = h.out or x.channels
        return _conv_params(x.channels, out, h.k, x) + 2 * out  # + batchnorm scale and shift

    @staticmethod
    def flops(h: Hyperparams, x: TensorType) -> int:
        return _conv_flops(x.channels, h.k, ConvBnRelu.shape(h, x))

    @staticmethod
    def build(h: Hyperparams, x: TensorType) -> nn.Module:
        from archc.library.convolution_modules import relu_conv_bn
        return relu_conv_bn(len(x.shape) - 1, x.channels, h.out or x.channels, h.k, h.stride,
                            _pads(h.k, "same"))


@block("resnet_block", cite=_NB201)
class ResnetBlock:
    """NAS-Bench-201's ResNetBasicblock, the reduction between cell stages: ReLU-conv-BN 3×3
    with `stride`, then ReLU-conv-BN 3×3, added to a shortcut. The shortcut is a stride-wide
    average pool and a 1×1 convolution (no bias, no norm) when strided, a 1×1 ReLU-conv-BN when
    only the width changes, and the identity otherwise. 2-D as in the benchmark, or 1-D."""

    out = hp("int", doc="output channels", low=1)
    stride = hp("int", 2, doc="stride of the first convolution and the shortcut", low=1)

    @staticmethod
    def shape(h: Hyperparams, x: TensorType) -> TensorType:
        x.expect(*_SPATIAL, block="resnet_block")
        return _windows(x, 3, h.stride, "same", "resnet_block").with_channels(h.out)

    @staticmethod
    def params(h: Hyperparams, x: TensorType) -> int:
        cin, out = x.channels, h.out
        convs = _conv_params(cin, out, 3, x) + _conv_params(out, out, 3, x) + 4 * out  # + 2 BNs
        if h.stride > 1:
            return convs + _conv_params(cin, out, 1, x)  # pool, then a bare 1×1 convolution
        if cin != out:
            return convs + _conv_params(cin, out, 1, x) + 2 * out  # a 1×1 ReLU-conv-BN
        return convs

    @staticmethod
    def flops(h: Hyperparams, x: TensorType) -> int:
        y = ResnetBlock.shape(h, x)
        shortcut = _conv_flops(x.channels, 1, y) if h.stride > 1 or x.channels != h.out else 0
        return _conv_flops(x.channels, 3, y) + _conv_flops(h.out, 3, y) + shortcut

    @staticmethod
    def build(h: Hyperparams, x: TensorType) -> nn.Module:
        from archc.library.convolution_modules import ResnetBlock as Module
        return Module(len(x.shape) - 1, x.channels, h.out, h.stride)


class _Pool(ParameterFree):
    """The rules shared by avg_pool and max_pool: 1-D or 2-D after the input, no parameters,
    no counted FLOPs."""

    how = ""

    @classmethod
    def shape(cls, h: Hyperparams, x: TensorType) -> TensorType:
        name = cls.signature.name  # type: ignore[attr-defined]
        x.expect(*_SPATIAL, block=name)
        return _windows(x, h.k, h.stride, h.padding, name)

    @classmethod
    def build(cls, h: Hyperparams, x: TensorType) -> nn.Module:
        from archc.library.convolution_modules import make_pool
        return make_pool(len(x.shape) - 1, cls.how, h.k, h.stride, _pads(h.k, h.padding))


@block("avg_pool", cite=_NB201)
class AvgPool(_Pool):
    """Average over k-wide windows, 1-D or 2-D after the input; padded cells are not counted
    (count_include_pad=False, as NAS-Bench-201's avg_pool_3x3)."""

    how = "avg"
    k = hp("int", 3, doc="window size", low=1)
    stride = hp("int", 1, doc="step between windows", low=1)
    padding = hp("str", "same", doc="same or valid (see the module docs)", options=PADDINGS)


@block("max_pool", cite=_LECUN)
class MaxPool(_Pool):
    """Maximum over k-wide windows, 1-D or 2-D after the input."""

    how = "max"
    k = hp("int", 3, doc="window size", low=1)
    stride = hp("int", 1, doc="step between windows", low=1)
    padding = hp("str", "same", doc="same or valid (see the module docs)", options=PADDINGS)


@block("global_avg_pool", cite="Lin, Chen, Yan, Network In Network, ICLR 2014, "
       "arXiv 1312.4400")
class GlobalAvgPool(ParameterFree):
    """Average every position away, keeping the features: (b, c, …) → (b, c) for 1-D and 2-D
    inputs, (b, t, d) → (b, d) for a sequence (the mean over tokens)."""

    @staticmethod
    def shape(h: Hyperparams, x: TensorType) -> TensorType:
        x.expect("seq", *_SPATIAL, block="global_avg_pool")
        return TensorType((x.channels,), "flat")

    @staticmethod
    def build(h: Hyperparams, x: TensorType) -> nn.Module:
        from archc.library.standard_modules import PoolPositions
        return PoolPositions("mean", features_last=x.layout == "seq")
