"""Hyper-kernels (`hyperzzw`, `terminator`): the FFT path is a linear convolution equal to the
direct one; shapes in 1-D and 2-D; gradients reach the slow nets; in eval mode an example's
output does not depend on the rest of its batch; the slow loss reaches the trainer's channel;
the FLOP counter counts FFTs as the rules do. MIP's invariance: tests/library/test_hyper_mip.py."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from archc.library.base import implementation
from archc.library.hyper_kernels import fft_flops
from archc.library.hyper_kernels_modules import (
    GroupBatchInstanceNorm,
    HyperZZW,
    Terminator,
    direct_conv,
    fft_conv,
    local_conv,
)
from archc.library.tensor import Hyperparams, ShapeError, TensorType
from archc.search.trainer import _aux_loss

SIZES = [(12,), (13,), (1,), (2,), (8, 8), (7, 10), (5, 4)]
"""Spatial sizes: odd and even lengths, squares and rectangles, a single position."""


def _pair(sizes: tuple[int, ...], dtype: torch.dtype, seed: int) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(3, 4, *sizes, generator=gen, dtype=dtype)
    return z, torch.randn(3, 4, *sizes, generator=gen, dtype=dtype)


@pytest.mark.parametrize("sizes", SIZES, ids=str)
def test_fft_conv_equals_direct_convolution(sizes: tuple[int, ...]) -> None:
    z, w = _pair(sizes, torch.float32, 0)
    torch.testing.assert_close(fft_conv(z, w), direct_conv(z, w), rtol=0, atol=1e-5)
    z, w = _pair(sizes, torch.float64, 1)
    torch.testing.assert_close(fft_conv(z, w), direct_conv(z, w), rtol=0, atol=1e-12)


@pytest.mark.parametrize("length", [5, 6, 64])
def test_fft_conv_is_linear_not_circular(length: int) -> None:
    """A kernel that is one 1 at offset s from the centre shifts the input by s, zeros coming
    in at the edge (a circular convolution would wrap the far end around)."""
    z = torch.arange(1.0, length + 1, dtype=torch.float64).view(1, 1, length)
    centre = (length - 1) // 2
    for shift in (-2, 1, length - 1 - centre):
        w = torch.zeros(1, 1, length, dtype=torch.float64)
        w[..., centre + shift] = 1.0
        want = torch.zeros_like(z)
        if shift >= 0:
            want[..., :length - shift] = z[..., shift:]
        else:
            want[..., -shift:] = z[..., :shift]
        torch.testing.assert_close(fft_conv(z, w), want, rtol=0, atol=1e-12)


@pytest.mark.parametrize(("sizes", "k"), [((12,), 3), ((12,), 4), ((3,), 5), ((6, 5), 3)])
def test_local_conv_equals_direct_convolution(sizes: tuple[int, ...], k: int) -> None:
    gen = torch.Generator().manual_seed(2)
    z = torch.randn(2, 3, *sizes, generator=gen, dtype=torch.float64)
    w = torch.randn(2, 3, *(k,) * len(sizes), generator=gen, dtype=torch.float64)
    torch.testing.assert_close(local_conv(z, w), direct_conv(z, w), rtol=0, atol=1e-12)


def _rules(name: str, x: TensorType, **values: object) -> tuple[object, Hyperparams]:
    impl = implementation(name)
    defaults = {p.name: p.default for p in impl.signature.params}
    return impl, Hyperparams({**defaults, **values})


@pytest.mark.parametrize("shape", [(4, 12), (4, 6, 6), (2, 5, 7)], ids=str)
@pytest.mark.parametrize(("name", "values"), [
    ("hyperzzw", {"scope": "global"}), ("hyperzzw", {"scope": "local", "k": 5}),
    ("terminator", {"local_branches": 2, "bottleneck": 3}), ("terminator", {"mip": True})])
def test_shapes_parameters_and_flops_in_1d_and_2d(shape: tuple[int, ...], name: str,
                                                  values: dict[str, object]) -> None:
    x = TensorType(shape, "cl" if len(shape) == 2 else "chw")
    impl, h = _rules(name, x, hidden=8, **values)
    module = impl.build(h, x)
    with FlopCounterMode(display=False) as counter:
        out = module(torch.randn(3, *shape))
    assert tuple(out.shape) == (3, *impl.shape(h, x).shape)
    assert sum(p.numel() for p in module.parameters()) == impl.params(h, x)
    assert counter.get_total_flops() == 3 * impl.flops(h, x)


def test_wrong_inputs_are_shape_errors() -> None:
    for name in ("hyperzzw", "terminator"):
        impl, h = _rules(name, TensorType((16,), "flat"))
        with pytest.raises(ShapeError, match=r"cl|chw"):
            impl.shape(h, TensorType((16,), "flat"))
    impl, h = _rules("terminator", TensorType((4, 1, 1), "chw"))
    with pytest.raises(ShapeError, match="at least 2 positions"):
        impl.shape(h, TensorType((4, 1, 1), "chw"))


def test_fft_flops_are_counted_per_transform() -> None:
    assert fft_flops(8) == 60 and fft_flops(1) == 0  # 2.5 · 8 · log₂ 8
    z = torch.randn(2, 3, 10)
    with FlopCounterMode(display=False) as counter:
        torch.fft.irfft(torch.fft.rfft(z, n=20), n=20)
    assert counter.get_total_flops() == 2 * 2 * 3 * fft_flops(20)
    assert fft_flops(20) == math.floor(2.5 * 20 * math.log2(20))


@pytest.mark.parametrize("scope", ["global", "local"])
@pytest.mark.parametrize("shape", [(3, 10), (3, 5, 6)], ids=str)
def test_gradients_reach_every_slow_net_parameter(scope: str, shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    module = HyperZZW(shape[1:], shape[0], scope, 3, 8, 2, mip=scope == "local")
    module(torch.randn(2, *shape)).pow(2).sum().backward()
    for name, p in module.slow.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"slow.{name} gets no gradient"


def _terminator(shape: tuple[int, ...], **kw: object) -> Terminator:
    torch.manual_seed(0)
    args: dict = {"bottleneck": 2, "k": 3, "local_branches": 2, "hidden": 8, **kw}
    return Terminator(shape[1:], shape[0], **args)


@pytest.mark.parametrize("shape", [(3, 10), (13, 4, 4)], ids=str)
def test_in_eval_mode_an_example_does_not_depend_on_its_batch(shape: tuple[int, ...]) -> None:
    module = _terminator(shape, dropout=0.3)
    gen = torch.Generator().manual_seed(3)
    for _ in range(3):  # training steps move the batch norms' running statistics
        module(torch.randn(8, *shape, generator=gen)).sum().backward()
    module.eval()
    batch = torch.randn(5, *shape, generator=gen)
    with torch.no_grad():
        together = module(batch)
        alone = torch.cat([module(batch[i:i + 1]) for i in range(5)])
        other = module(torch.cat([batch[2:3], 100 * torch.randn(3, *shape, generator=gen)]))
    torch.testing.assert_close(alone, together, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(other[0], together[2], rtol=1e-5, atol=1e-5)


def test_group_norm_alternates_batch_and_instance_statistics() -> None:
    norm = GroupBatchInstanceNorm(6, 3)  # groups [0, 1] batch, [2, 3] instance, [4, 5] batch
    x = torch.randn(4, 6, 5) * 3 + 2
    y = norm(x)
    torch.testing.assert_close(y[:, 2:4].mean(-1), torch.zeros(4, 2), atol=1e-5, rtol=0)
    for c in (0, 1, 4, 5):
        torch.testing.assert_close(y[:, c].mean(), torch.tensor(0.0), atol=1e-5, rtol=0)
        assert y[:, c].mean(-1).abs().max() > 1e-3  # not per example
    assert norm.batch.running_mean.shape == (4,)


def test_the_slow_loss_travels_through_the_aux_loss_channel() -> None:
    module = _terminator((3, 10), slow_loss=0.5)
    assert module.aux_loss() is None  # no forward yet
    z = torch.randn(4, 3, 10)
    module(z)
    loss = module.aux_loss()
    assert loss is not None and loss.requires_grad
    g = module.global_branch.kernel(z)
    want = 0.5 * torch.stack([
        nn.functional.mse_loss(b.kernel(z), g[..., 4 - (k - 1) // 2: 4 - (k - 1) // 2 + k])
        for b, k in zip(module.local, (3, 5), strict=True)]).mean()
    torch.testing.assert_close(loss, want)
    torch.testing.assert_close(_aux_loss(nn.Sequential(module)), want)  # what the trainer adds
    loss.backward()
    assert module.global_branch.slow.out_weight.grad.abs().sum() > 0
    module.eval()
    with torch.no_grad():
        module(torch.randn(2, 3, 10))
    assert module.aux_loss() is loss  # an eval forward leaves the training loss alone


@pytest.mark.parametrize("scope", ["global", "local"])
def test_kernels_depend_on_their_own_example_only(scope: str) -> None:
    """The slow net's context is the example's mean: two examples get two kernels, and an
    example's kernel is the same whatever shares its batch, in training mode too."""
    torch.manual_seed(0)
    module = HyperZZW((9,), 3, scope, 3, 8, 2)
    z = torch.randn(4, 3, 9)
    kernels = module.kernel(z)
    assert (kernels[0] - kernels[1]).abs().max() > 1e-4
    torch.testing.assert_close(module.kernel(z[1:2]), kernels[1:2])
