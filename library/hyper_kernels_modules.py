"""The torch modules behind `hyperzzw` and `terminator` (rules and maths: `hyper_kernels.py`).

This file imports torch at module level, so only the blocks' `build` rules import it (lazily).
Each class keeps every `__init__` argument under its own name, so export can rebuild it.

Importing it also teaches torch's flop counter to count FFTs (`fft_flops` per transform of n
real points, the classic radix-2 count halved for real input), which it otherwise counts as
zero: a global hyper-kernel is applied by FFT, and its cost should show.

>>> import torch
>>> z, w = torch.randn(2, 3, 10), torch.randn(2, 3, 10)
>>> torch.allclose(fft_conv(z, w), direct_conv(z, w), atol=1e-5)
True
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import flop_registry, register_flop_formula

from archc.library.convolution import _pads
from archc.library.convolution_modules import make_conv
from archc.library.hyper_kernels import _TERMINATOR_LAYERS, fft_flops
from archc.library.slow_net import SlowNet

__all__ = ["HyperZZW", "Terminator", "GroupBatchInstanceNorm", "fft_conv", "direct_conv",
           "local_conv"]

_DROPOUT = {1: nn.Dropout1d, 2: nn.Dropout2d}
_LOCAL = {1: "bcnk,bck->bcn", 2: "bchwij,bcij->bchw"}
"""The per-example depthwise product of unfolded windows with their kernels, per dim."""


def _transform_flops(real_shape: tuple[int, ...], dims: list[int]) -> int:
    n = math.prod(real_shape[d] for d in dims)
    return math.prod(real_shape) // n * fft_flops(n) if n else 0


def _register_fft_flops() -> None:
    aten = torch.ops.aten
    if aten._fft_r2c in flop_registry:
        return

    @register_flop_formula(aten._fft_r2c)
    def r2c(x_shape: tuple[int, ...], dim: list[int], *args: object, **kwargs: object) -> int:
        return _transform_flops(tuple(x_shape), list(dim))

    @register_flop_formula(aten._fft_c2r)
    def c2r(x_shape: tuple[int, ...], dim: list[int], *args: object,
            out_shape: tuple[int, ...] = (), **kwargs: object) -> int:
        return _transform_flops(tuple(out_shape), list(dim))


_register_fft_flops()


def _same_pads(kernel: tuple[int, ...]) -> list[int]:
    """F.pad's list for `same` padding ((k - 1) // 2 before, k // 2 after), last axis first."""
    return [p for k in reversed(kernel) for p in _pads(k, "same")]


def fft_conv(z: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Per-example, per-channel cross-correlation (what torch's convolutions compute) of z
    (b, c, *n) with a kernel w (b, c, *n) of the input's own size, `same` padding (zeros, not
    wrap-around), by FFT in O(N log N). Each axis is zero-padded to 2n ≥ 2n - 1, the length of
    the full linear convolution, so the circular product of the spectra wraps nothing into the
    n outputs kept (those at offsets n // 2 … n // 2 + n - 1 of the full result)."""
    dims = tuple(range(2, z.dim()))
    sizes = [2 * n for n in z.shape[2:]]
    spectrum = torch.fft.rfftn(z, s=sizes, dim=dims) * torch.fft.rfftn(w.flip(dims), s=sizes,
                                                                      dim=dims)
    full = torch.fft.irfftn(spectrum, s=sizes, dim=dims)
    for d in dims:
        n = z.shape[d]
        full = full.narrow(d, n // 2, n)
    return full


def direct_conv(z: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """The same product as `fft_conv` (any kernel size), by a grouped convolution with one
    group per example and channel: O(N · kernel cells). The reference for tests and benchmarks."""
    b, c, kernel = z.shape[0], z.shape[1], tuple(w.shape[2:])
    padded = F.pad(z, _same_pads(kernel))
    x = padded.reshape(1, b * c, *padded.shape[2:])
    conv = F.conv1d if len(kernel) == 1 else F.conv2d
    return conv(x, w.reshape(b * c, 1, *kernel), groups=b * c).view(z.shape)


def local_conv(z: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Per-example depthwise cross-correlation of z (b, c, *n) with small kernels w
    (b, c, k[, k]), `same` padding: the windows unfolded, times their kernel, in one einsum."""
    kernel = tuple(w.shape[2:])
    x = F.pad(z, _same_pads(kernel))
    for axis, k in enumerate(kernel):
        x = x.unfold(2 + axis, k, 1)
    return torch.einsum(_LOCAL[len(kernel)], x, w)


class HyperZZW(nn.Module):
    """One HyperZ·Z·W operator over z (b, channels, *sizes). `global`: the slow net writes a
    kernel K the input's size; the fast weight is z ⊙ K, and the output is z correlated with
    it (by FFT). `local`: the slow net writes a k-wide kernel per example and channel, applied
    as a depthwise correlation, then a 1×1 channel mixer."""

    def __init__(self, sizes: tuple[int, ...], channels: int, scope: str, k: int, hidden: int,
                 layers: int, mip: bool = False) -> None:
        super().__init__()
        self.sizes, self.channels, self.scope, self.k = tuple(sizes), channels, scope, k
        self.hidden, self.layers, self.mip = hidden, layers, mip
        nd = len(self.sizes)
        cells = self.sizes if scope == "global" else (k,) * nd
        self.slow = SlowNet(cells, channels, hidden, layers, channels, mip)
        self.mixer = make_conv(nd, channels, channels, 1, 1, (0, 0)) if scope == "local" else None

    def kernel(self, z: torch.Tensor) -> torch.Tensor:
        """The slow net's kernel for each example and channel: (b, c, *cells)."""
        return self.slow(z).view(z.shape[0], self.channels, *self.slow.sizes)

    def convolve(self, z: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
        if self.mixer is None:
            return fft_conv(z, z * kernel)  # HyperZ·Z·W: z ⊛ (z ⊙ W)
        return self.mixer(local_conv(z, kernel))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.convolve(z, self.kernel(z))


class GroupBatchInstanceNorm(nn.Module):
    """G-IBS: the channels in `groups` contiguous groups, normalised alternately by batch norm
    (even groups) and instance norm (odd groups), neither with an affine map. The reference
    uses batch statistics in eval mode too; here batch norm keeps running statistics, so in
    eval mode no example depends on the others (instance norm never couples them)."""

    batch_index: torch.Tensor
    instance_index: torch.Tensor
    order: torch.Tensor

    def __init__(self, channels: int, groups: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.channels, self.groups, self.eps = channels, groups, eps
        bounds = [round(i * channels / groups) for i in range(groups + 1)]
        owner = [g for g in range(groups) for _ in range(bounds[g], bounds[g + 1])]
        batch = [c for c in range(channels) if owner[c] % 2 == 0]
        instance = [c for c in range(channels) if owner[c] % 2 == 1]
        order = torch.argsort(torch.tensor(batch + instance))
        self.register_buffer("batch_index", torch.tensor(batch), persistent=False)
        self.register_buffer("instance_index", torch.tensor(instance, dtype=torch.long),
                             persistent=False)
        self.register_buffer("order", order, persistent=False)
        self.batch = nn.BatchNorm1d(len(batch), eps=eps, affine=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.flatten(2)
        parts = [self.batch(y.index_select(1, self.batch_index))]
        if self.instance_index.numel():
            inst = y.index_select(1, self.instance_index)
            mean, var = inst.mean(-1, keepdim=True), inst.var(-1, unbiased=False, keepdim=True)
            parts.append((inst - mean) / torch.sqrt(var + self.eps))
        return torch.cat(parts, 1).index_select(1, self.order).view_as(x)


class Terminator(nn.Module):
    """The Terminator block over z (b, channels, *sizes): branches [z, global, z ⊙ σ(global),
    local₁ … local_n] (local kernel sizes k, k + 2, …), concatenated, a 1×1 bottleneck (no
    bias: the norm would remove it) to bottleneck × channels, G-IBS, GELU, channel dropout.

    `aux_loss()` is the slow nets' local feedback of the latest training forward: `slow_loss`
    times the mean squared difference between each local kernel and the global kernel over
    the cells where they overlap (centred on the cell that meets the output position)."""

    def __init__(self, sizes: tuple[int, ...], channels: int, bottleneck: int, k: int,
                 local_branches: int, hidden: int, dropout: float = 0.0, mip: bool = False,
                 slow_loss: float = 1.0) -> None:
        super().__init__()
        self.sizes, self.channels, self.bottleneck, self.k = tuple(sizes), channels, bottleneck, k
        self.local_branches, self.hidden, self.dropout = local_branches, hidden, dropout
        self.mip, self.slow_loss = mip, slow_loss
        nd, out = len(self.sizes), bottleneck * channels
        layers = _TERMINATOR_LAYERS
        self.global_branch = HyperZZW(self.sizes, channels, "global", k, 2 * hidden, layers, mip)
        self.local = nn.ModuleList(HyperZZW(self.sizes, channels, "local", k + 2 * i, hidden,
                                            layers, mip) for i in range(local_branches))
        self.squeeze = make_conv(nd, (3 + local_branches) * channels, out, 1, 1, (0, 0),
                                 bias=False)
        self.norm = GroupBatchInstanceNorm(out, min(12, out))
        self.drop = _DROPOUT[nd](dropout)
        self._aux: torch.Tensor | None = None

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        kernel = self.global_branch.kernel(z)
        g = self.global_branch.convolve(z, kernel)
        parts, local_kernels = [z, g, z * torch.sigmoid(g)], []
        for branch in cast("Iterable[HyperZZW]", self.local):
            local_kernels.append(branch.kernel(z))
            parts.append(branch.convolve(z, local_kernels[-1]))
        if self.training:
            self._aux = self.slow_loss * _agreement(kernel, local_kernels)
        return self.drop(F.gelu(self.norm(self.squeeze(torch.cat(parts, 1)))))

    def aux_loss(self) -> torch.Tensor | None:
        """The weighted slow-net loss of the latest training forward (None before one)."""
        return self._aux


def _centre(kernel: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
    """The `size` cells of `kernel` (b, c, *cells) around the cell aligned with the output
    position, (n - 1) // 2 on each axis."""
    for axis, s in enumerate(size):
        n = kernel.shape[2 + axis]
        kernel = kernel.narrow(2 + axis, (n - 1) // 2 - (s - 1) // 2, s)
    return kernel


def _agreement(global_kernel: torch.Tensor, local_kernels: list[torch.Tensor]) -> torch.Tensor:
    """Mean over local kernels of the MSE to the global kernel where they overlap (0 if none)."""
    losses = []
    for local in local_kernels:
        size = tuple(min(a, b) for a, b in zip(global_kernel.shape[2:], local.shape[2:],
                                               strict=True))
        losses.append(F.mse_loss(_centre(local, size), _centre(global_kernel, size)))
    return torch.stack(losses).mean() if losses else global_kernel.new_zeros(())
