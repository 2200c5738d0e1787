"""Convolutions and pooling, 1-D (b, c, t) and 2-D (b, c, h, w), channels first.

Padding is named, not counted, so a spec states intent and the shape rule does the arithmetic:
`same` pads k // 2 on each side (the length is kept at stride 1, and becomes ⌈t / stride⌉ for
odd k), `valid` pads nothing, and `causal` (1-D only) pads k - 1 on the left so no output sees a
later input. The pooling defaults (k = 3, stride 1, same) keep the shape, as NAS-Bench-201's
`avg_pool_3x3` does, so `avg_pool(k = 3)` can stand on a cell edge.

>>> Conv2d.signature.params[0].name  # conv2d(32, k = 3): the first positional is `out`
'out'
>>> Conv1d.signature.param("padding").problem("causal") is None
True
"""

from __future__ import annotations

from archc.library.base import block, hp

__all__ = ["PADDINGS"]

PADDINGS = ("same", "valid")
"""How convolutions and pools pad; 1-D convolutions also allow `causal`."""

_LECUN = "LeCun et al., Gradient-Based Learning Applied to Document Recognition, Proc. IEEE 1998"
_NB201 = "Dong, Yang, NAS-Bench-201, ICLR 2020, arXiv 2001.00326"


@block("conv1d", cite=_LECUN)
class Conv1d:
    """A 1-D convolution over the last axis: (b, c, t) → (b, out, t')."""

    out = hp("int", doc="output channels", low=1)
    k = hp("int", 3, doc="kernel size", low=1)
    stride = hp("int", 1, doc="step between kernel positions", low=1)
    padding = hp("str", "same", doc="same, valid or causal (see the module docs)",
                 options=(*PADDINGS, "causal"))
    groups = hp("int", 1, doc="channel groups; must divide both channel counts", low=1)
    bias = hp("bool", True, doc="learn a bias per output channel")


@block("conv2d", cite=_LECUN)
class Conv2d:
    """A 2-D convolution with a square kernel: (b, c, h, w) → (b, out, h', w')."""

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


@block("resnet_block", cite=_NB201)
class ResnetBlock:
    """NAS-Bench-201's reduction block between cell stages: a basic residual block of two
    ReLU-conv-BN 3×3 convolutions (the first with `stride`), with a 2×2 average-pool and 1×1
    convolution shortcut when the shape changes."""

    out = hp("int", doc="output channels", low=1)
    stride = hp("int", 2, doc="stride of the first convolution and the shortcut", low=1)


@block("avg_pool", cite=_NB201)
class AvgPool:
    """Average over k-wide windows, 1-D or 2-D after the input; padded cells are not counted."""

    k = hp("int", 3, doc="window size", low=1)
    stride = hp("int", 1, doc="step between windows", low=1)
    padding = hp("str", "same", doc="same or valid (see the module docs)", options=PADDINGS)


@block("max_pool", cite=_LECUN)
class MaxPool:
    """Maximum over k-wide windows, 1-D or 2-D after the input."""

    k = hp("int", 3, doc="window size", low=1)
    stride = hp("int", 1, doc="step between windows", low=1)
    padding = hp("str", "same", doc="same or valid (see the module docs)", options=PADDINGS)


@block("global_avg_pool", cite="Lin, Chen, Yan, Network In Network, ICLR 2014, "
       "arXiv 1312.4400")
class GlobalAvgPool:
    """Average every spatial axis away: (b, c, …) → (b, c)."""
