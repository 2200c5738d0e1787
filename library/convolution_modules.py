"""The torch modules behind the convolution and pooling blocks of `convolution.py`.

This file imports torch at module level, so only the blocks' `build` rules import it (lazily).
Each class keeps every `__init__` argument under its own name, so export can rebuild it.
Padding arrives resolved: `pads = (left, right)`, the same on every spatial axis. Equal pads use
torch's own `padding=`; unequal ones (an even kernel with `same`, or `causal`) pad explicitly
first, since torch's convolutions and pools only pad symmetrically.

>>> import torch
>>> pool = make_pool(2, "avg", 2, 2, (0, 1))
>>> pool(torch.ones(1, 1, 5, 5)).shape  # ⌈5 / 2⌉ = 3, every window averages real cells only
torch.Size([1, 1, 3, 3])
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["make_conv", "make_pool", "relu_conv_bn", "PaddedPool", "ResnetBlock"]

_CONV = {1: nn.Conv1d, 2: nn.Conv2d}
_NORM = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d}
_POOL: dict[tuple[str, int], Callable[..., torch.Tensor]] = {
    ("avg", 1): F.avg_pool1d, ("avg", 2): F.avg_pool2d,
    ("max", 1): F.max_pool1d, ("max", 2): F.max_pool2d}


def _pad(nd: int, pads: tuple[int, int]) -> nn.Module:
    """Zero padding of `pads` on each of the last `nd` axes."""
    return nn.ConstantPad1d(pads, 0.0) if nd == 1 else nn.ZeroPad2d(pads * 2)


def make_conv(nd: int, cin: int, cout: int, k: int, stride: int, pads: tuple[int, int],
              groups: int = 1, bias: bool = True) -> nn.Module:
    """An `nd`-D convolution (b, cin, …) → (b, cout, …) padding `pads` on each spatial axis."""
    conv = _CONV[nd]
    if pads[0] == pads[1]:
        return conv(cin, cout, k, stride, padding=pads[0], groups=groups, bias=bias)
    return nn.Sequential(_pad(nd, pads), conv(cin, cout, k, stride, groups=groups, bias=bias))


def relu_conv_bn(nd: int, cin: int, cout: int, k: int, stride: int,
                 pads: tuple[int, int]) -> nn.Sequential:
    """NAS-Bench-201's ReLUConvBN: ReLU, convolution without bias, batchnorm with an affine
    scale and shift and running statistics (the benchmark's trained networks use affine=True)."""
    conv = make_conv(nd, cin, cout, k, stride, pads, bias=False)
    return nn.Sequential(nn.ReLU(), conv, _NORM[nd](cout))


class PaddedPool(nn.Module):
    """Average or max pooling after unequal padding. Max pads with -inf, which no window ever
    picks (each window holds a real cell). Average pools zero-padded input and divides by the
    pooled fraction of real cells, so padding is not counted (count_include_pad=False)."""

    def __init__(self, nd: int, how: str, k: int, stride: int, pads: tuple[int, int]) -> None:
        super().__init__()
        self.nd, self.how, self.k, self.stride, self.pads = nd, how, k, stride, pads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pool, pads = _POOL[self.how, self.nd], self.pads * self.nd  # (left, right) per axis
        if self.how == "max":
            return pool(F.pad(x, pads, value=float("-inf")), self.k, self.stride)
        sums = pool(F.pad(x, pads), self.k, self.stride)
        real = pool(F.pad(torch.ones_like(x[:1, :1]), pads), self.k, self.stride)
        return sums / real


def make_pool(nd: int, how: str, k: int, stride: int, pads: tuple[int, int]) -> nn.Module:
    """`how` (avg or max) pooling over k-wide windows; torch's own module when pads are equal."""
    if pads[0] != pads[1]:
        return PaddedPool(nd, how, k, stride, pads)
    if how == "max":
        return (nn.MaxPool1d, nn.MaxPool2d)[nd - 1](k, stride, padding=pads[0])
    return (nn.AvgPool1d, nn.AvgPool2d)[nd - 1](k, stride, padding=pads[0],
                                                count_include_pad=False)


class ResnetBlock(nn.Module):
    """NAS-Bench-201's ResNetBasicblock: conv_a = ReLUConvBN(3, stride), conv_b =
    ReLUConvBN(3, 1), plus a shortcut: a stride-wide average pool then a 1×1 convolution
    without bias or norm when strided, a 1×1 ReLUConvBN when only the width changes, else
    the identity. The pool uses ceil_mode so odd sizes give ⌈n / stride⌉ like conv_a (the
    benchmark's sizes are even, where this is its plain AvgPool2d(2, 2))."""

    def __init__(self, nd: int, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.nd, self.cin, self.cout, self.stride = nd, cin, cout, stride
        self.conv_a = relu_conv_bn(nd, cin, cout, 3, stride, (1, 1))
        self.conv_b = relu_conv_bn(nd, cout, cout, 3, 1, (1, 1))
        self.downsample: nn.Module = nn.Identity()
        if stride > 1:
            pool = (nn.AvgPool1d, nn.AvgPool2d)[nd - 1](stride, stride, ceil_mode=True)
            self.downsample = nn.Sequential(pool, make_conv(nd, cin, cout, 1, 1, (0, 0),
                                                            bias=False))
        elif cin != cout:
            self.downsample = relu_conv_bn(nd, cin, cout, 1, 1, (0, 0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))
