"""MIP (Magnitude Invariant Parametrization) in the slow net: what it promises, checked.

1. The slow net's input has the same norm (√dim) at every cell of the kernel grid, where raw
   coordinates range from 0 at the centre to √dim at a corner: the input's magnitude carries no
   information about the position, so the output's magnitude is not proportional to it.
2. The kernel is θ₀ + ΔK with θ₀ an independent learned kernel: with the network's output map
   at zero, the kernel is θ₀ exactly, for every input, and θ₀'s gradient is the kernel's.
3. Consequently, at a cell where the coordinates are 0, a plain MFN slow net's filters see the
   same input for every frequency (sin(φ)); under MIP they do not.
"""

from __future__ import annotations

import math

import pytest
import torch

from archc.library.slow_net import SlowNet, coordinates, encode


@pytest.mark.parametrize("sizes", [(9,), (4,), (5, 7), (1, 6)], ids=str)
def test_the_encoding_has_the_same_norm_at_every_cell(sizes: tuple[int, ...]) -> None:
    grid = coordinates(sizes).double()
    norms = encode(grid, mip=True).norm(dim=-1)
    torch.testing.assert_close(norms, torch.full_like(norms, math.sqrt(len(sizes))),
                               rtol=0, atol=1e-12)
    raw = encode(grid, mip=False).norm(dim=-1)
    assert raw.max() - raw.min() > 0.5  # without MIP the magnitude follows the position


def test_the_encoding_is_one_to_one_on_the_grid() -> None:
    encoded = encode(coordinates((7, 7)).double(), mip=True)
    assert len({tuple(row.tolist()) for row in encoded}) == 49


@pytest.mark.parametrize("sizes", [(6,), (3, 4)], ids=str)
def test_the_kernel_is_a_learned_base_plus_the_network_output(sizes: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    net = SlowNet(sizes, out=3, hidden=8, layers=2, context=5, mip=True)
    assert net.out_bias.shape == (3, math.prod(sizes))  # θ₀: one value per channel and cell
    z = torch.randn(4, 5, 10)
    base = net(z) - torch.matmul(net.out_weight, _last_hidden(net, z))
    torch.testing.assert_close(base, net.out_bias.expand(4, -1, -1))
    with torch.no_grad():
        net.out_weight.zero_()
    for scale in (1e-3, 1.0, 1e3):  # any input, of any magnitude
        torch.testing.assert_close(net(scale * z), net.out_bias.expand(4, -1, -1))
    net(z).sum().backward()
    torch.testing.assert_close(net.out_bias.grad, torch.full_like(net.out_bias, 4.0))


def test_without_mip_the_base_is_one_bias_per_channel() -> None:
    net = SlowNet((6,), out=3, hidden=8, layers=2, context=5, mip=False)
    assert net.out_bias.shape == (3, 1) and net.grid.shape == (6, 1)
    assert SlowNet((6,), 3, 8, 2, 5, mip=True).grid.shape == (6, 2)


def test_at_the_centre_plain_filters_see_no_position_but_mip_filters_do() -> None:
    torch.manual_seed(1)
    plain, mip = (SlowNet((5,), 2, 16, 1, 3, mip=m) for m in (False, True))
    centre = 2  # coordinate 0
    with torch.no_grad():
        torch.testing.assert_close(plain.filters()[:, :, centre], torch.sin(plain.phi))
        assert (mip.filters()[:, :, centre] - torch.sin(mip.phi)).abs().max() > 1e-2


def _last_hidden(net: SlowNet, z: torch.Tensor) -> torch.Tensor:
    """h_L of the slow net, recomputed from its parts (the documented recurrence)."""
    m = 1 + net.modulation(z.flatten(2).mean(-1)).view(-1, net.layers, net.hidden, 1)
    f = net.filters()
    h = f[0] * m[:, 0]
    for layer in range(net.layers):
        h = f[layer + 1] * (torch.matmul(net.weight[layer], h) + net.bias[layer, :, None])
        if layer + 1 < net.layers:
            h = h * m[:, layer + 1]
    return h
