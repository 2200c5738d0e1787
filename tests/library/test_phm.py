"""PHM/PHC layers (library/phm.py): n = 1 is the dense layer, the parameter formula, the one-einsum
weight equals Σᵢ kron(Aᵢ, Fᵢ) written as a loop, the Hamilton rules give quaternion
multiplication, the inference cache follows parameter changes, and a channel count n does not
divide is a located user error."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

import archc
from archc.errors import ArchError
from archc.library.base import implementation
from archc.library.phm_modules import PhmConv, PhmLinear, kron_weight
from archc.library.tensor import Hyperparams, TensorType

TOL = {"rtol": 1e-5, "atol": 1e-6}


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_n1_linear_equals_a_dense_layer_with_the_same_weights() -> None:
    layer, dense = PhmLinear(12, 5, 1, True), torch.nn.Linear(12, 5)
    with torch.no_grad():
        layer.a.fill_(1.0)
        layer.f.copy_(dense.weight[None])
        layer.b.copy_(dense.bias)
    x = torch.randn(3, 7, 12, generator=_gen())
    torch.testing.assert_close(layer(x), dense(x), **TOL)


@pytest.mark.parametrize(("nd", "pads"), [(1, (1, 1)), (1, (2, 0)), (2, (1, 1)), (2, (0, 1))])
def test_n1_conv_equals_a_dense_convolution(nd: int, pads: tuple[int, int]) -> None:
    k = sum(pads) + 1
    layer = PhmConv(nd, 3, 6, 1, k, 2, pads, True)
    dense = (torch.nn.Conv1d, torch.nn.Conv2d)[nd - 1](3, 6, k, 2)
    with torch.no_grad():
        layer.a.fill_(1.0)
        layer.f.copy_(dense.weight[None])
        layer.b.copy_(dense.bias)
    x = torch.randn(2, 3, *(9,) * nd, generator=_gen())
    want = dense(F.pad(x, pads * nd))
    torch.testing.assert_close(layer(x), want, **TOL)


@pytest.mark.parametrize(("name", "x", "h", "want"), [
    # blocks.md §10.2: 512→512, n = 4 has 66 112 parameters; 3×3 conv 64→64, n = 4: 9 280 + bias
    ("phm_linear", TensorType((512,), "flat"), {"out": 512, "n": 4, "bias": True}, 66112),
    ("phm_linear", TensorType((5, 6), "seq"), {"out": 9, "n": 3, "bias": False}, 27 + 18),
    ("phm_conv2d", TensorType((64, 8, 8), "chw"),
     {"out": 64, "n": 4, "k": 3, "stride": 1, "padding": "same", "bias": True}, 9280 + 64),
    ("phm_conv1d", TensorType((6, 10), "cl"),
     {"out": 4, "n": 2, "k": 5, "stride": 1, "padding": "causal", "bias": False}, 8 + 60),
])
def test_parameter_count_is_n_cubed_plus_dense_over_n(name: str, x: TensorType, h: dict,
                                                      want: int) -> None:
    rules, hp = implementation(name), Hyperparams(h)
    module = rules.build(hp, x)
    cells = h.get("k", 1) ** (len(x.shape) - 1) if name != "phm_linear" else 1
    formula = h["n"] ** 3 + h["out"] * x.channels * cells // h["n"] + h["out"] * h["bias"]
    assert rules.params(hp, x) == formula == want == sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("kernel", [(), (3,), (2, 3)])
def test_the_einsum_weight_equals_a_loop_of_kronecker_products(kernel: tuple[int, ...]) -> None:
    n, o, c = 3, 2, 4
    a = torch.randn(n, n, n, generator=_gen(1))
    f = torch.randn(n, o, c, *kernel, generator=_gen(2))
    want = torch.zeros(n * o, n * c, *kernel)
    for i in range(n):
        for cell in itertools.product(*(range(s) for s in kernel)):  # () once without a kernel
            want[(..., *cell)] += torch.kron(a[i], f[(i, ..., *cell)])
    torch.testing.assert_close(kron_weight(a, f), want, **TOL)


# The Hamilton product's multiplication table as matrices acting on the (r, i, j, k) blocks.
HAMILTON = torch.tensor([
    [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]],        # 1
    [[0, -1, 0, 0], [1, 0, 0, 0], [0, 0, 0, -1], [0, 0, 1, 0]],      # i
    [[0, 0, -1, 0], [0, 0, 0, 1], [1, 0, 0, 0], [0, -1, 0, 0]],      # j
    [[0, 0, 0, -1], [0, 0, -1, 0], [0, 1, 0, 0], [1, 0, 0, 0]],      # k
], dtype=torch.float32)


def _hamilton(w: list[torch.Tensor], x: list[torch.Tensor]) -> list[torch.Tensor]:
    """The quaternion product w ⊗ x of a quaternion matrix w = (r, i, j, k) and a quaternion
    vector x, written out by hand: i² = j² = k² = ijk = -1."""
    (wr, wi, wj, wk), (xr, xi, xj, xk) = w, x

    def mv(m: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return v @ m.T

    return [mv(wr, xr) - mv(wi, xi) - mv(wj, xj) - mv(wk, xk),
            mv(wr, xi) + mv(wi, xr) + mv(wj, xk) - mv(wk, xj),
            mv(wr, xj) - mv(wi, xk) + mv(wj, xr) + mv(wk, xi),
            mv(wr, xk) + mv(wi, xj) - mv(wj, xi) + mv(wk, xr)]


def test_n4_with_the_hamilton_rules_is_quaternion_multiplication() -> None:
    layer = PhmLinear(4 * 5, 4 * 3, 4, False)
    with torch.no_grad():
        layer.a.copy_(HAMILTON)
    x = torch.randn(6, 20, generator=_gen(3))
    want = torch.cat(_hamilton(list(layer.f.detach()), list(x.split(5, dim=-1))), dim=-1)
    torch.testing.assert_close(layer(x), want, **TOL)


def test_inference_reuses_the_weight_until_a_parameter_changes() -> None:
    layer = PhmLinear(8, 8, 2, True).eval()
    x = torch.randn(2, 8, generator=_gen(4))
    with torch.no_grad():
        first = layer.weight()
        assert layer.weight() is first, "built once in inference"
        layer.f.mul_(2.0)  # an in-place change, as an optimizer step makes
        assert layer.weight() is not first
        torch.testing.assert_close(layer.weight(), 2 * first, **TOL)
        cached = layer.weight()
    layer.load_state_dict({k: v * 0 for k, v in layer.state_dict().items()})
    with torch.no_grad():
        assert not layer(x).any(), "load_state_dict invalidates the cache"
    layer.train()
    assert layer._cached is None and layer.weight() is not cached
    assert layer.weight().requires_grad, "training never sees a cached, detached weight"


def test_initialisation_follows_the_reference_fans() -> None:
    torch.manual_seed(0)
    n, out, d = 4, 64, 32
    layer = PhmLinear(d, out, n, True)
    assert layer.a.abs().max() <= math.sqrt(6 / (2 * n * n))  # fan in = fan out = n²
    assert layer.f.abs().max() <= math.sqrt(6 / ((out // n) * (d // n) + d))
    assert layer.b.abs().max() <= 1 / math.sqrt(d)
    assert layer.f.abs().max() > 0.9 * math.sqrt(6 / ((out // n) * (d // n) + d))


SPEC = """space s {{
    input x: float[6, 8, 8]
    {layer}
}}
"""


@pytest.mark.parametrize(("layer", "col", "words"), [
    ("phm_conv2d(8, n = 4)", 5, "got 6 in and 8 out"),
    ("phm_conv2d(6, n = 3, k = 3)\n    phm_conv2d(10, n = 3)", 5, "got 6 in and 10 out"),
    ("flatten\n    phm_linear(10, n = 4)", 5, "got 384 in and 10 out"),
])
def test_a_channel_count_n_does_not_divide_is_a_located_error(layer: str, col: int,
                                                               words: str) -> None:
    space = archc.loads(SPEC.format(layer=layer), name="s.arch")
    with pytest.raises(ArchError) as caught:
        archc.compile(space, {})
    (diag,) = caught.value.diagnostics
    last_line = 3 + layer.count("\n")
    assert diag.span is not None and (diag.span.line, diag.span.column) == (last_line, col)
    assert "n must divide both counts" in diag.message and words in diag.message
