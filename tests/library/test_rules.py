"""What particular blocks mean, beyond the registry-wide contract: shape errors in the user's
terms, padding arithmetic, and differential tests against reference computations (NAS-Bench-201's
modules as its source writes them, attention written out by hand)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from archc.library import REGISTRY
from archc.library.base import implementation
from archc.library.tensor import Hyperparams, ShapeError, TensorType

SEQ = TensorType((6, 16), "seq")
IMAGE = TensorType((4, 8, 8), "chw")


def _h(name: str, **values: object) -> Hyperparams:
    """Block `name`'s defaults, overridden by `values`."""
    defaults = {p.name: p.default for p in REGISTRY[name].params if not p.required}
    return Hyperparams({**defaults, **values})


def _built(name: str, x: TensorType, **values: object) -> nn.Module:
    torch.manual_seed(0)
    return implementation(name).build(_h(name, **values), x)


@pytest.mark.parametrize(("name", "values", "x", "message"), [
    ("attention", {"heads": 5}, SEQ, "d = 16 into heads = 5"),
    ("attention", {"heads": 16, "rope": True}, SEQ, "16 / 16 must be even"),
    ("pos_embedding", {"max_len": 4}, SEQ, "max_len = 4 positions, got a sequence of 6"),
    ("mlp", {"ratio": 0.01}, SEQ, "no hidden unit"),
    ("conv2d", {"out": 6, "groups": 4}, IMAGE, "groups = 4 .* 4 in and 6 out"),
    ("conv2d", {"out": 6, "k": 9, "padding": "valid"}, IMAGE, "at least 9 positions"),
    ("conv1d", {"out": 6}, IMAGE, "conv1d expects cl"),
    ("embedding", {"vocab": 5, "dim": 3}, SEQ, "embedding expects tokens"),
    ("linear", {"out": 3}, TensorType((6,), "tokens", "int"), "linear expects flat"),
])
def test_shape_errors_name_the_numbers(name: str, values: dict[str, object], x: TensorType,
                                       message: str) -> None:
    with pytest.raises(ShapeError, match=message):
        implementation(name).shape(_h(name, **values), x)


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("n", [5, 8])
def test_same_padding_gives_ceil_of_length_over_stride(k: int, stride: int, n: int) -> None:
    x = TensorType((2, n), "cl")
    for name in ("conv1d", "avg_pool", "max_pool"):
        y = implementation(name).shape(_h(name, out=2, k=k, stride=stride), x)
        assert y.shape[1] == math.ceil(n / stride)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
def test_same_padding_of_an_even_kernel_is_torchs_at_stride_one() -> None:
    conv = _built("conv2d", IMAGE, out=3, k=4)  # an explicit pad, then the convolution
    reference = nn.Conv2d(4, 3, 4, padding="same")
    reference.load_state_dict(conv[1].state_dict())
    x = torch.randn(2, *IMAGE.shape)
    torch.testing.assert_close(conv(x), reference(x))


def test_causal_convolution_sees_no_later_input() -> None:
    conv = _built("conv1d", TensorType((1, 10), "cl"), out=1, k=3, padding="causal")
    x = torch.randn(1, 1, 10)
    later = x.clone()
    later[..., 6:] += 1.0
    torch.testing.assert_close(conv(x)[..., :6], conv(later)[..., :6])


def test_average_pool_does_not_count_padding_even_when_uneven() -> None:
    ones = torch.ones(1, 2, 5, 5)
    for k, stride in ((3, 1), (2, 2), (4, 3)):
        pool = _built("avg_pool", TensorType((2, 5, 5), "chw"), k=k, stride=stride)
        torch.testing.assert_close(pool(ones), torch.ones_like(pool(ones)))


# NAS-Bench-201 (Dong & Yang; xautodl/models/cell_operations.py), written as the source does.

def _relu_conv_bn(cin: int, cout: int, k: int, stride: int, pad: int) -> nn.Sequential:
    return nn.Sequential(nn.ReLU(inplace=False), nn.Conv2d(cin, cout, k, stride, pad, bias=False),
                         nn.BatchNorm2d(cout, affine=True, track_running_stats=True))


class _Nb201Basicblock(nn.Module):
    def __init__(self, inplanes: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv_a = _relu_conv_bn(inplanes, planes, 3, stride, 1)
        self.conv_b = _relu_conv_bn(planes, planes, 3, 1, 1)
        self.downsample: nn.Module | None = None
        if stride == 2:
            self.downsample = nn.Sequential(nn.AvgPool2d(kernel_size=2, stride=2, padding=0),
                                            nn.Conv2d(inplanes, planes, 1, 1, 0, bias=False))
        elif inplanes != planes:
            self.downsample = _relu_conv_bn(inplanes, planes, 1, 1, 0)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        basicblock = self.conv_b(self.conv_a(inputs))
        residual = inputs if self.downsample is None else self.downsample(inputs)
        return residual + basicblock


def _same_function(ours: nn.Module, reference: nn.Module, x: torch.Tensor) -> None:
    """Copy `ours`' weights into `reference` tensor by tensor (same registration order) and
    compare outputs in training and evaluation mode."""
    mine, theirs = ours.state_dict(), reference.state_dict()
    assert [v.shape for v in mine.values()] == [v.shape for v in theirs.values()]
    reference.load_state_dict(dict(zip(theirs, mine.values(), strict=True)))
    for train in (True, False):
        ours.train(train)
        reference.train(train)
        torch.testing.assert_close(ours(x), reference(x))


@pytest.mark.parametrize(("cin", "cout", "stride"), [(4, 8, 2), (4, 8, 1), (4, 4, 1)])
def test_resnet_block_is_nas_bench_201s_basic_block(cin: int, cout: int, stride: int) -> None:
    x = TensorType((cin, 8, 8), "chw")
    block = _built("resnet_block", x, out=cout, stride=stride)
    _same_function(block, _Nb201Basicblock(cin, cout, stride), torch.randn(2, *x.shape))


def test_cell_operations_are_nas_bench_201s() -> None:
    x = torch.randn(2, *IMAGE.shape)
    for k in (1, 3):
        _same_function(_built("conv_bn_relu", IMAGE, k=k), _relu_conv_bn(4, 4, k, 1, k // 2), x)
    pool = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    torch.testing.assert_close(_built("avg_pool", IMAGE, k=3)(x), pool(x))
    torch.testing.assert_close(_built("zero", IMAGE)(x), x.mul(0.0))


@pytest.mark.parametrize("causal", [False, True])
def test_attention_is_softmax_of_scaled_scores(causal: bool) -> None:
    attention = _built("attention", SEQ, heads=4, causal=causal)
    x = torch.randn(2, *SEQ.shape)
    q, k, v = attention.qkv(x).view(2, 6, 3, 4, 4).permute(2, 0, 3, 1, 4)
    scores = q @ k.transpose(-1, -2) / math.sqrt(4)
    if causal:
        scores = scores.masked_fill(torch.ones(6, 6).triu(1).bool(), float("-inf"))
    y = (scores.softmax(-1) @ v).transpose(1, 2).reshape(2, 6, 16)
    torch.testing.assert_close(attention(x), attention.out(y))


def test_rope_makes_scores_depend_on_offsets_only() -> None:
    attention = _built("attention", SEQ, heads=2, rope=True)
    q = torch.randn(1, 1, 1, 8).expand(1, 1, 6, 8)
    from archc.library.standard_modules import _rotate
    rotated = _rotate(q, 10000.0)[0, 0]  # (t, dh): one vector at every position
    scores = rotated @ rotated.T
    torch.testing.assert_close(scores.diagonal(1)[:-1], scores.diagonal(1)[1:])
    assert attention(torch.randn(2, *SEQ.shape)).shape == (2, *SEQ.shape)


def test_sinusoidal_codes_are_vaswanis() -> None:
    codes = _built("sinusoidal", SEQ)(torch.zeros(1, *SEQ.shape))[0]  # (t, d)
    pos, i = 3, 5
    angle = pos / 10000.0 ** (2 * i / 16)
    torch.testing.assert_close(codes[pos, 2 * i : 2 * i + 2],
                               torch.tensor([math.sin(angle), math.cos(angle)]))


@pytest.mark.parametrize("pool", ["mean", "max", "first", "last"])
def test_classifier_pools_positions_then_projects(pool: str) -> None:
    head = _built("classifier", SEQ, classes=3, pool=pool)
    x = torch.randn(2, *SEQ.shape)
    pooled = {"mean": x.mean(1), "max": x.amax(1), "first": x[:, 0], "last": x[:, -1]}[pool]
    torch.testing.assert_close(head(x), head[1](pooled))


def test_norms_normalise_the_channels_of_images() -> None:
    x = torch.randn(2, *IMAGE.shape) * 3 + 1
    y = _built("layernorm", IMAGE)(x)
    torch.testing.assert_close(y.mean(1), torch.zeros(2, 8, 8), atol=1e-5, rtol=0)
    z = _built("rmsnorm", IMAGE)(x)
    torch.testing.assert_close(z.pow(2).mean(1), torch.ones(2, 8, 8), atol=1e-4, rtol=0)
    w = _built("batchnorm", SEQ)(torch.randn(2, *SEQ.shape) * 3 + 1)  # over d, per feature
    torch.testing.assert_close(w.mean((0, 1)), torch.zeros(16), atol=1e-5, rtol=0)


def test_swiglu_gates_with_silu() -> None:
    mlp = _built("mlp", SEQ, ratio=2.0, activation="swiglu")
    x = torch.randn(2, *SEQ.shape)
    value, gate = mlp.up(x).chunk(2, -1)
    torch.testing.assert_close(mlp(x), mlp.down(F.silu(value) * gate))
