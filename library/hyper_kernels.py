"""Hyper-kernels: convolution kernels written by a small "slow" network, per input.

A slow net (a multiplicative-filter coordinate MLP over a grid c ∈ [-1, 1]^dim, `slow_net.py`)
generates a kernel K for each example; the HyperZ·Z·W operator multiplies it by the input Z
itself (Z ⊙ W, a context-dependent fast weight) and correlates Z with the result —
"HyperZ·Z·W". A `global` kernel has the input's own size (length, or height × width: any
rectangle) and is applied by FFT, zero-padded so the convolution is linear, not circular, in
O(N log N); a `local` kernel is k wide and applied directly as a per-example depthwise
correlation (`same` padding) followed by a 1×1 channel mixer. Both work on 1-D (c, l) and 2-D
(c, h, w) inputs; the number of axes comes from the input. `terminator` is the paper's
multi-branch block (SFNE), reduced to its parts: global, local and gated branches side by side
with the input, concatenated, then a 1×1 bottleneck, group-wise batch/instance norm, GELU and
dropout. Maths, parameter counts and the reference's pitfalls: research/blocks.md §8.

Where archc differs from the reference code (so that in eval mode no example depends on the
rest of its batch, and every trained tensor is a registered parameter):
- the slow nets are conditioned on each example's own mean over positions, not on a batch
  mean, and global slow nets are conditioned too (the reference's are not);
- G-IBS's batch norms keep running statistics (the reference normalises by batch statistics in
  eval mode as well);
- the reference's unregistered α, β renormalisation of local kernels and its scalar biases are
  left out; the gated branch is z ⊙ σ(global branch) (one of the reference's ten branches, with
  the input itself, the global and the local ones);
- the reference's global operator is a matrix product over the spatial axes (square inputs
  only); archc's is a correlation, as the operator's name for local kernels already is;
- the slow loss: the reference ties the global kernels of successive blocks together; a block
  here cannot see its neighbours, so its `aux_loss()` ties each local kernel to the global
  kernel of the same block where they overlap (weight `slow_loss`, 1 as in the reference),
  through the trainer's one aux-loss channel.

FLOPs follow the project's convention (torch's flop counter), which counts no FFT on its own;
building a hyper-kernel module teaches the counter `fft_flops` per transform, so the global
branch costs 3 transforms per channel (z, the fast weight, the inverse) of the padded size.

`mip` switches the slow net to a Magnitude Invariant Parametrization (blocks.md §11): the
coordinates, rescaled to [0, 1], enter as [cos(πc/2), sin(πc/2)] (constant norm), and the
kernel is a learned base kernel plus the slow net's output, K = K₀ + ΔK. It is our combination
of the two papers, not part of the Terminator reference.

>>> Terminator.signature.param("mip").default
False
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from archc.library.base import block, hp
from archc.library.tensor import Hyperparams, ShapeError, TensorType

if TYPE_CHECKING:
    from torch import nn

__all__ = ["fft_flops"]

_HYPERZZW = "Zhang, HyperZ·Z·W Operator Connects Slow-Fast Networks, arXiv 2401.17948"
_MIP_DOC = ("generate kernels with Magnitude Invariant Parametrization (Ortiz, Guttag, Dalca, "
            "ICLR 2024, arXiv 2304.07645)")
_SPATIAL = ("cl", "chw")
_TERMINATOR_LAYERS = 2
"""Filter layers of every slow net in a Terminator (the reference's local slow nets)."""


def fft_flops(n: int) -> int:
    """FLOPs of one FFT of n real points: 2.5 n log₂ n, half the classic 5 n log₂ n of a
    complex radix-2 FFT (a real FFT does half the work), rounded down."""
    return int(2.5 * n * math.log2(n)) if n > 1 else 0


def _slow_params(cells: int, dim: int, out: int, hidden: int, layers: int, context: int,
                 mip: bool) -> int:
    """Filters (Ω, φ per layer), linears, the context modulation, the output map and θ₀
    (one bias per channel, or a whole base kernel under MIP)."""
    inputs = 2 * dim if mip else dim
    return ((layers + 1) * (hidden * inputs + hidden) + layers * (hidden ** 2 + hidden)
            + (context * layers * hidden + layers * hidden) + out * hidden
            + out * (cells if mip else 1))


def _slow_flops(cells: int, out: int, hidden: int, layers: int, context: int) -> int:
    """Per example: the context modulation, the hidden linears and the output map, over every
    cell (the filters are pointwise)."""
    return 2 * (context * layers * hidden + layers * hidden ** 2 * cells + out * hidden * cells)


def _spatial(x: TensorType, name: str) -> tuple[int, ...]:
    x.expect(*_SPATIAL, block=name)
    return x.shape[1:]


def _operator(x: TensorType, scope: str, k: int, hidden: int, layers: int,
              mip: bool) -> tuple[int, int]:
    """(parameters, FLOPs per example) of one HyperZ·Z·W operator on `x`."""
    sizes, c = x.shape[1:], x.channels
    dim, positions = len(sizes), math.prod(sizes)
    if scope == "global":
        padded = math.prod(2 * n for n in sizes)
        params = _slow_params(positions, dim, c, hidden, layers, c, mip)
        flops = _slow_flops(positions, c, hidden, layers, c) + 3 * c * fft_flops(padded)
        return params, flops
    cells = k ** dim
    params = _slow_params(cells, dim, c, hidden, layers, c, mip) + c * c + c  # + 1×1 mixer
    flops = (_slow_flops(cells, c, hidden, layers, c) + 2 * c * positions * cells
             + 2 * c * c * positions)
    return params, flops


@block("hyperzzw", cite=_HYPERZZW)
class Hyperzzw:
    """One HyperZ·Z·W operator, channels first: (b, c, t) or (b, c, h, w); the output has the
    input's shape. A global kernel has the input's size and is applied by FFT; a local one is
    k wide, applied directly, then mixed across channels by a 1×1 convolution."""

    scope = hp("str", "global", doc="kernel spans the whole input, or is k wide",
               options=("global", "local"))
    k = hp("int", 3, doc="size of a local kernel (odd: centred on its position)", low=1)
    hidden = hp("int", 32, doc="hidden width of the slow net", low=1)
    layers = hp("int", 2, doc="multiplicative-filter layers of the slow net", low=1)
    mip = hp("bool", False, doc=_MIP_DOC)

    @staticmethod
    def shape(h: Hyperparams, x: TensorType) -> TensorType:
        _spatial(x, "hyperzzw")
        return x

    @staticmethod
    def params(h: Hyperparams, x: TensorType) -> int:
        return _operator(x, h.scope, h.k, h.hidden, h.layers, h.mip)[0]

    @staticmethod
    def flops(h: Hyperparams, x: TensorType) -> int:
        return _operator(x, h.scope, h.k, h.hidden, h.layers, h.mip)[1]

    @staticmethod
    def build(h: Hyperparams, x: TensorType) -> nn.Module:
        from archc.library.hyper_kernels_modules import HyperZZW
        return HyperZZW(x.shape[1:], x.channels, h.scope, h.k, h.hidden, h.layers, h.mip)


@block("terminator", cite=_HYPERZZW)
class Terminator:
    """The Terminator (SFNE) block: the input, a global branch, a gated branch z ⊙ σ(global)
    and local branches side by side, concatenated, then a 1×1 bottleneck to `bottleneck` × c
    channels, group-wise batch/instance norm, GELU and channel dropout. No residual connection.
    Local branch i uses kernel size k + 2i (the reference: 3, 5, 7, 9); the global slow net is
    twice as wide as the local ones (64 vs 32 in the reference). Its slow-net loss goes to the
    trainer through `aux_loss()`."""

    bottleneck = hp("int", 2, doc="output channels over input channels (reference: 4, 3, 2, 2, 2)",
                    low=1)
    k = hp("int", 3, doc="smallest local kernel size (odd)", low=1)
    local_branches = hp("int", 4, doc="number of local branches", low=0)
    hidden = hp("int", 32, doc="hidden width of the local slow nets", low=1)
    dropout = hp("float", 0.0, doc="channel dropout after the bottleneck", low=0, high=1)
    mip = hp("bool", False, doc=_MIP_DOC)
    slow_loss = hp("float", 1.0, doc="weight of the slow nets' local feedback loss", low=0)

    @staticmethod
    def shape(h: Hyperparams, x: TensorType) -> TensorType:
        sizes = _spatial(x, "terminator")
        if math.prod(sizes) < 2:
            raise ShapeError(f"terminator needs at least 2 positions (its instance norm "
                             f"normalises over them), got {x}")
        return x.with_channels(h.bottleneck * x.channels)

    @staticmethod
    def params(h: Hyperparams, x: TensorType) -> int:
        return sum(part[0] for part in _terminator_parts(h, x))

    @staticmethod
    def flops(h: Hyperparams, x: TensorType) -> int:
        return sum(part[1] for part in _terminator_parts(h, x))

    @staticmethod
    def build(h: Hyperparams, x: TensorType) -> nn.Module:
        from archc.library.hyper_kernels_modules import Terminator as Module
        return Module(x.shape[1:], x.channels, h.bottleneck, h.k, h.local_branches, h.hidden,
                      h.dropout, h.mip, h.slow_loss)


def _terminator_parts(h: Hyperparams, x: TensorType) -> list[tuple[int, int]]:
    """(parameters, FLOPs) of each part: global branch, local branches, bottleneck."""
    c, layers = x.channels, _TERMINATOR_LAYERS
    parts = [_operator(x, "global", h.k, 2 * h.hidden, layers, h.mip)]
    parts += [_operator(x, "local", h.k + 2 * i, h.hidden, layers, h.mip)
              for i in range(h.local_branches)]
    concat, out = (3 + h.local_branches) * c, h.bottleneck * c
    parts.append((concat * out, 2 * concat * out * math.prod(x.shape[1:])))
    return parts
