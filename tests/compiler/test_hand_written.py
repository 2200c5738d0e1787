"""The compiled NAS-Bench-201 network equals the benchmark's network written by hand in plain
torch (its ReLU-conv-BN ops, its cell wiring, its ResNet reduction blocks), given the same
weights. Weights are copied in call order, so any difference in wiring, op or order fails."""

from __future__ import annotations

import torch
from torch import nn

import archc

POINT = {"nb_cell.n1.op": "conv3", "nb_cell.n2.op": "conv1", "nb_cell.n2.op#2": "pool",
         "nb_cell.return.op": "skip", "nb_cell.return.op#2": "conv3",
         "nb_cell.return.op#3": "conv1"}


def relu_conv_bn(c_in: int, c_out: int, k: int, stride: int = 1) -> nn.Module:
    return nn.Sequential(nn.ReLU(), nn.Conv2d(c_in, c_out, k, stride, k // 2, bias=False),
                         nn.BatchNorm2d(c_out))


class Cell(nn.Module):
    """The cell of POINT: n1 = conv3(x); n2 = conv1(x) + pool(n1);
    out = x + conv3(n1) + conv1(n2)."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.e10 = relu_conv_bn(c, c, 3)
        self.e20 = relu_conv_bn(c, c, 1)
        self.e21 = nn.AvgPool2d(3, 1, 1, count_include_pad=False)
        self.e31 = relu_conv_bn(c, c, 3)
        self.e32 = relu_conv_bn(c, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n1 = self.e10(x)
        n2 = self.e20(x) + self.e21(n1)
        return x + self.e31(n1) + self.e32(n2)


class Reduction(nn.Module):
    """NAS-Bench-201's ResNetBasicblock with stride 2."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.a = relu_conv_bn(c_in, c_out, 3, 2)
        self.b = relu_conv_bn(c_out, c_out, 3)
        self.down = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(x) + self.b(self.a(x))


class Network(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16)]
        for c_in, c in ((16, 16), (16, 32), (32, 64)):
            if c != c_in:
                layers.append(Reduction(c_in, c))
            layers += [Cell(c) for _ in range(5)]
        layers += [nn.BatchNorm2d(64), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                   nn.Linear(64, 10)]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def _tensors(module: nn.Module) -> list[torch.Tensor]:
    return [*module.parameters(), *(b for b in module.buffers() if b.dtype.is_floating_point)]


def test_compiled_nb201_equals_the_hand_written_network() -> None:
    space = archc.load("examples/nb201.arch")
    compiled = archc.compile(space, POINT, {"classes": 10}).module
    hand = Network()
    ours, theirs = _tensors(compiled), _tensors(hand)
    assert [t.shape for t in ours] != [] and len(ours) == len(theirs)
    torch.manual_seed(0)
    with torch.no_grad():
        for source, target in zip(ours, theirs, strict=True):
            source.copy_(torch.randn_like(source).abs() if source.ndim == 1 else
                         torch.randn_like(source) * 0.1)
            target.copy_(source)
    compiled.eval()
    hand.eval()
    x = torch.randn(2, 3, 32, 32)
    assert torch.allclose(compiled(x), hand(x), atol=1e-5)


def test_compiled_transformer_equals_the_hand_written_one() -> None:
    """benchmarks/specs/transformer24.arch against the benchmark's hand-written module."""
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location(
        "compile_speed", root / "benchmarks" / "compile_speed.py")
    bench = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(bench)  # type: ignore[union-attr]
    space = archc.load(root / "benchmarks" / "specs" / "transformer24.arch")
    compiled = archc.compile(space, {}, {"vocab": bench.VOCAB}, {"t": bench.T}).module.eval()
    hand = bench.Hand().eval()
    rename = {"layernorm.": "norm1.", "attention.qkv.": "qkv.", "attention.out.": "proj.",
              "layernorm_2.": "norm2.", "mlp.up.": "up.", "mlp.down.": "down."}
    state = {}
    for name, tensor in compiled.state_dict().items():
        if name.startswith("layers_"):
            layer, rest = name[len("layers_"):].split("_", 1)
            key = next(k for k in rename if rest.startswith(k))
            name = f"blocks.{layer}.{rename[key]}{rest[len(key):]}"
        else:
            name = {"embedding.weight": "embed.weight", "layernorm.weight": "norm.weight",
                    "layernorm.bias": "norm.bias", "lm_head.weight": "head.weight"}[name]
        state[name] = tensor
    hand.load_state_dict(state)
    tokens = torch.randint(0, bench.VOCAB, (2, bench.T))
    assert torch.allclose(compiled(tokens), hand(tokens), atol=1e-4)
