"""The block contract over the whole registry (STYLE.md §6): for every implemented block, for
seeded samples of its hyperparameters and every candidate input its shape rule accepts, the
built module agrees with the block's rules.

- It builds on the meta device (no weights) and on the CPU, with the formula's parameter count.
- Its output has the rule's shape (meta and CPU) and dtype.
- torch's flop counter on a CPU forward counts the rule's FLOPs: exactly for the standard and
  convolution families, within 5% for any block.
- A forward/backward on a batch of two gives a finite gradient for every parameter.

Attention runs on the math backend of `scaled_dot_product_attention` while FLOPs are counted:
the fused CPU kernel is invisible to `FlopCounterMode` (torch 2.13 counts 0 for it), while the
math path's two batched matmuls are exactly what the rule counts.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from archc.dsl.signature import Hyper, Signature
from archc.library import REGISTRY, convolution, standard, transformer
from archc.library.base import implementation
from archc.library.tensor import Hyperparams, ShapeError, TensorType

INPUTS = (
    TensorType((6,), "tokens", "int"),
    TensorType((16,), "flat"),
    TensorType((6, 16), "seq"),
    TensorType((4, 12), "cl"),
    TensorType((4, 8, 8), "chw"),
)
"""Candidate inputs: every block is tried on each, and checked on those its shape rule takes."""

SEEDS = range(10)
"""Hyperparameter samples per block; seed 0 is the defaults (required ones drawn)."""

CORNERS = (
    ("attention", {"heads": 2, "causal": True, "rope": True, "qk_norm": True}),
    ("attention", {"heads": 16, "causal": True, "dropout": 0.5, "bias": False}),
    ("pos_embedding", {"max_len": 6}),
    ("mlp", {"ratio": 2.5, "activation": "swiglu", "dropout": 0.2}),
    ("conv1d", {"out": 6, "k": 4, "stride": 3, "padding": "causal", "groups": 2}),
    ("conv1d", {"out": 8, "k": 2, "stride": 1, "padding": "same", "groups": 4}),
    ("conv2d", {"out": 6, "k": 4, "stride": 2, "padding": "same", "groups": 2}),
    ("conv2d", {"out": 2, "k": 3, "stride": 2, "padding": "valid", "groups": 1}),
    ("conv_bn_relu", {"out": 0, "k": 2, "stride": 2}),
    ("resnet_block", {"out": 4, "stride": 1}),  # identity shortcut
    ("resnet_block", {"out": 8, "stride": 1}),  # 1×1 ReLU-conv-BN shortcut
    ("resnet_block", {"out": 8, "stride": 3}),  # odd sizes: 12 → 4, 8 → 3
    ("avg_pool", {"k": 2, "stride": 2, "padding": "same"}),
    ("avg_pool", {"k": 4, "stride": 3, "padding": "same"}),
    ("max_pool", {"k": 2, "stride": 3, "padding": "same"}),
    ("classifier", {"classes": 3, "pool": "last"}),
    ("phm_linear", {"out": 8, "n": 4}),
    ("phm_conv1d", {"out": 8, "n": 2, "k": 4, "stride": 2, "padding": "causal"}),
    ("phm_conv2d", {"out": 4, "n": 4, "k": 3, "stride": 2, "padding": "valid"}),
    ("moe", {"experts": 3, "top_k": 2, "capacity": 0.7, "gate": "sqrt", "shared": True}),
    ("moe", {"experts": 2, "top_k": 1, "expert": "gelu", "capacity": 1.0, "shared": True}),
    ("moe", {"experts": 4, "top_k": 2, "expert": "silu", "noise": True}),
)
"""Hand-picked hyperparameters (the rest default) for paths random draws may miss."""

BATCH = 2
INT_SPAN = 7  # ints are drawn from [low, low + INT_SPAN], floats from [low, low + FLOAT_SPAN]
FLOAT_SPAN = 4.0
EXACT_FAMILIES = (standard, transformer, convolution)
"""Families whose FLOP rules must equal the flop counter's count exactly."""


def _draw(param: Hyper, rng: random.Random) -> Any:
    """A value in `param`'s domain, kept small so modules build and run in milliseconds."""
    if param.type == "block":
        return param.default
    if param.type == "bool":
        return rng.random() < 0.5
    if param.type == "str":
        return rng.choice(param.options) if param.options else param.default
    low = param.low if param.low is not None else 0
    if param.type == "int":
        low = int(low) + (1 if param.positive else 0)
        high = low + INT_SPAN if param.high is None else min(int(param.high), low + INT_SPAN)
        return rng.randint(low, high)
    high = low + FLOAT_SPAN if param.high is None else min(param.high, low + FLOAT_SPAN)
    value = rng.uniform(low, high)
    return value if value > low or not param.positive else high


def _sample(sig: Signature, seed: int) -> Hyperparams:
    rng = random.Random(f"{sig.name}/{seed}")
    return Hyperparams({
        p.name: p.default if seed == 0 and not p.required else _draw(p, rng) for p in sig.params})


def _samples() -> list[tuple[str, str, Hyperparams]]:
    """(block, sample id, hyperparameters): seeded draws, then the corners."""
    drawn = [(name, str(seed), _sample(REGISTRY[name], seed))
             for name in sorted(REGISTRY) if implementation(name) for seed in SEEDS]
    corners = [(name, f"corner{i}", Hyperparams({**_sample(REGISTRY[name], 0), **values}))
               for i, (name, values) in enumerate(CORNERS)]
    return drawn + corners


def _cases() -> list[Any]:
    """(block, hyperparameters, input) for every candidate input a block's shape rule takes."""
    cases = []
    for name, sample, h in _samples():
        for x in INPUTS:
            try:
                implementation(name).shape(h, x)
            except ShapeError:
                continue
            cases.append(pytest.param(name, h, x, id=f"{name}-{sample}-{x.layout}"))
    return cases


CASES = _cases()


def _input(x: TensorType, h: Hyperparams, device: str) -> torch.Tensor:
    """A batch of `BATCH` examples of type `x` (token ids below the block's vocab, if any)."""
    gen = torch.Generator().manual_seed(0)
    if x.dtype != "float":
        ids = torch.randint(0, h.get("vocab", 2), (BATCH, *x.shape), generator=gen)
        return ids.to(device)
    return torch.randn(BATCH, *x.shape, generator=gen).to(device)


def _params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize(("name", "h", "x"), CASES)
def test_meta_build_matches_the_shape_and_parameter_rules(name: str, h: Hyperparams,
                                                          x: TensorType) -> None:
    impl = implementation(name)
    with torch.device("meta"):
        module = impl.build(h, x)
    assert all(p.is_meta for p in module.parameters()), "built on meta, no weight is allocated"
    assert _params(module) == impl.params(h, x)
    out = module(_input(x, h, "meta"))
    assert tuple(out.shape) == (BATCH, *impl.shape(h, x).shape)


@pytest.mark.parametrize(("name", "h", "x"), CASES)
def test_cpu_module_matches_every_rule(name: str, h: Hyperparams, x: TensorType) -> None:
    impl = implementation(name)
    torch.manual_seed(0)
    module = impl.build(h, x)
    assert _params(module) == impl.params(h, x)
    y = impl.shape(h, x)
    inp = _input(x, h, "cpu").requires_grad_(x.dtype == "float")
    with FlopCounterMode(display=False) as counter, sdpa_kernel(SDPBackend.MATH):
        out = module(inp)
    assert tuple(out.shape) == (BATCH, *y.shape)
    assert out.is_floating_point() == (y.dtype == "float")
    measured, predicted = counter.get_total_flops() / BATCH, impl.flops(h, x)
    # FLOPs paid once per forward whatever the batch (a PHM layer builds its weight from its
    # factors) are in the rule once, as for one example alone; a batch shares them.
    shared = getattr(impl, "flops_per_forward", lambda h, x: 0)(h, x)
    predicted += shared / BATCH - shared
    if hasattr(impl, "flops_bounds"):  # data-dependent: routing decides how many rows each
        low, high = impl.flops_bounds(h, x)  # expert computes (moe); the rule is one value
        assert low <= measured <= high and low <= predicted <= high  # of that range
    else:
        assert measured == pytest.approx(predicted, rel=0.05)
    if implementation(name).__module__ in {m.__name__ for m in EXACT_FAMILIES}:
        assert measured == predicted
    _check_gradients(module, out)


def _check_gradients(module: torch.nn.Module, out: torch.Tensor) -> None:
    """Backpropagate a random projection of `out`; every trainable parameter gets a finite
    gradient. An output without gradient is legitimate only for a parameter-free block whose
    output is integer or all zeros (an identity of token ids, `zero`)."""
    trainable = [p for p in module.parameters() if p.requires_grad]
    if not out.requires_grad:
        assert not trainable, "the output does not depend on the block's parameters"
        assert not out.is_floating_point() or not out.any(), "only a cut path has no gradient"
        return
    weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(1))
    (out * weights).sum().backward()
    for pname, p in module.named_parameters():
        assert p.grad is not None, f"{pname} gets no gradient"
        assert torch.isfinite(p.grad).all(), f"{pname} has a non-finite gradient"


def test_every_standard_and_convolution_block_is_implemented() -> None:
    names = [v.signature.name for module in EXACT_FAMILIES for v in vars(module).values()
             if isinstance(v, type) and v.__module__ == module.__name__
             and hasattr(v, "signature")]
    missing = [n for n in names if not REGISTRY[n].body and implementation(n) is None]
    assert names and not missing, f"declared but not implemented: {missing}"
    assert all(implementation(n) is None for n in names if REGISTRY[n].body), (
        "a body block's rules are the compiler's")


def test_every_implemented_block_accepts_some_candidate_input() -> None:
    implemented = {n for n in REGISTRY if implementation(n)}
    covered = {case.values[0] for case in CASES}
    assert implemented <= covered, f"never checked: {sorted(implemented - covered)}"
    corners = {case.id.split("-")[1] for case in CASES}
    assert {f"corner{i}" for i in range(len(CORNERS))} <= corners, "a corner fits no input"
