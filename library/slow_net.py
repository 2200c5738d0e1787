"""The slow network of the hyper-kernel blocks: a coordinate MLP that writes convolution kernels.

A `SlowNet` maps every cell c of a grid over [-1, 1]^dim (the kernel's cells) to `out` kernel
values, one per channel, as a multiplicative filter network (MAGNet, the kind the Terminator
reference uses):

    f_l  = sin(Ω_l e(c) + φ_l)                      l = 0 … L   (filters, one per layer)
    h_0  = f_0 ⊙ (1 + m_0(z))
    h_l  = f_l ⊙ (W_l h_{l-1} + b_l) ⊙ (1 + m_l(z))  l = 1 … L  (no m_L)
    K    = W_o h_L + θ₀

`m(z)` is a linear map of the per-example mean of the input z over its positions: the context
that makes the kernel depend on the example. The reference conditions only its local kernels,
on the mean over the whole BATCH, so one example's kernel depends on the others; archc
conditions every slow net on the example's own mean, so nothing couples examples, and every
matmul runs once per example (its FLOPs are per example, exactly).

The filters depend on the coordinates only. With dim ≤ 2 their "linear map" is one or two
multiply-adds per cell, written as broadcasting (pointwise, so not counted as FLOPs).

Initialisation (archc's reading of MAGNet): each filter row's frequency is scaled by
γ ~ Gamma(6 / (l + 1), 1) / 6 times the grid's Nyquist frequency π(n - 1)/2, so the first filter
spans up to the finest frequency the grid resolves and later ones are lower; phases are uniform
in [-π, π]; the output is scaled by 1/√cells (Chang et al.'s rule, applied at construction rather
than, as the reference does, at the first forward — which rescales loaded weights again).

`mip = True` (Magnitude Invariant Parametrization, Ortiz et al., research/blocks.md §11): the
coordinates, mapped to u = (c + 1)/2 ∈ [0, 1], enter as e = [cos(πu/2), sin(πu/2)], whose norm is
√dim at every cell; and θ₀ is a learned base kernel (out × cells) instead of one bias per
channel, so K = θ₀ + ΔK with ΔK the network's output.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["SlowNet", "coordinates", "encode"]

_GAMMA_SHAPE = 6.0
"""α of the filters' Gamma(α / (l + 1), 1) frequency scales (MAGNet's default)."""


def coordinates(sizes: tuple[int, ...]) -> torch.Tensor:
    """The cells of a grid of `sizes` over [-1, 1]^dim, row-major: (cells, dim). An axis of one
    cell sits at 0."""
    axes = [torch.linspace(-1.0, 1.0, n) if n > 1 else torch.zeros(1) for n in sizes]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, len(sizes))


def encode(grid: torch.Tensor, mip: bool) -> torch.Tensor:
    """The slow net's input for each cell: the coordinates, or MIP's constant-norm encoding
    [cos(πu/2), sin(πu/2)] of u = (c + 1)/2 (norm √dim everywhere)."""
    if not mip:
        return grid
    u = (grid + 1.0) / 2.0
    return torch.cat([torch.cos(math.pi / 2 * u), torch.sin(math.pi / 2 * u)], dim=-1)


class SlowNet(nn.Module):
    """Kernels (b, out, cells) for a batch z (b, context, …), over a grid of `sizes` cells."""

    grid: torch.Tensor

    def __init__(self, sizes: tuple[int, ...], out: int, hidden: int, layers: int,
                 context: int, mip: bool = False) -> None:
        super().__init__()
        self.sizes, self.out, self.hidden, self.layers = tuple(sizes), out, hidden, layers
        self.context, self.mip = context, mip
        cells = math.prod(self.sizes)
        encoded = encode(coordinates(self.sizes), mip)
        self.register_buffer("grid", encoded, persistent=False)
        self.omega = nn.Parameter(torch.empty(layers + 1, hidden, encoded.shape[-1]))
        self.phi = nn.Parameter(torch.empty(layers + 1, hidden))
        self.weight = nn.Parameter(torch.empty(layers, hidden, hidden))
        self.bias = nn.Parameter(torch.empty(layers, hidden))
        self.modulation = nn.Linear(context, layers * hidden)
        self.out_weight = nn.Parameter(torch.empty(out, hidden))
        self.out_bias = nn.Parameter(torch.empty(out, cells if mip else 1))  # θ₀ under MIP
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.omega.is_meta:
            return
        cells, hidden = math.prod(self.sizes), self.hidden
        nyquist = math.pi * (max(self.sizes) - 1) / 2
        with torch.no_grad():
            shapes = torch.tensor([_GAMMA_SHAPE / (i + 1) for i in range(self.layers + 1)])
            gamma = torch.distributions.Gamma(shapes, torch.ones_like(shapes)).sample((hidden,))
            scale = nyquist * gamma.T / _GAMMA_SHAPE  # (layers + 1, hidden)
            self.omega.copy_(scale[..., None] * torch.empty_like(self.omega).uniform_(-1, 1))
            self.phi.uniform_(-math.pi, math.pi)
            bound = math.sqrt(6 / hidden)
            self.weight.uniform_(-bound, bound)
            self.bias.zero_()
            nn.init.uniform_(self.modulation.weight, -0.1 / math.sqrt(self.context),
                             0.1 / math.sqrt(self.context))
            nn.init.zeros_(self.modulation.bias)
            self.out_weight.uniform_(-1, 1).mul_(math.sqrt(3 / hidden / cells))
            if self.mip:
                self.out_bias.uniform_(-1, 1).mul_(math.sqrt(3 / cells))
            else:
                self.out_bias.zero_()

    def filters(self) -> torch.Tensor:
        """sin(Ω_l e + φ_l) at every cell: (layers + 1, hidden, cells)."""
        phase = (self.grid[None, None] * self.omega[:, :, None, :]).sum(-1)
        return torch.sin(phase + self.phi[..., None])

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        context = z.flatten(2).mean(-1)  # (b, context): this example's own mean
        m = 1 + self.modulation(context).view(-1, self.layers, self.hidden, 1)
        f = self.filters()
        h = f[0] * m[:, 0]  # (b, hidden, cells)
        for layer in range(self.layers):
            h = f[layer + 1] * (torch.matmul(self.weight[layer], h) + self.bias[layer, :, None])
            if layer + 1 < self.layers:
                h = h * m[:, layer + 1]
        return torch.matmul(self.out_weight, h) + self.out_bias
