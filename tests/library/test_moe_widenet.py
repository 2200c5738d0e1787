"""WideNet (examples/widenet.arch): `repeat n share = weights` keeps ONE attention and ONE moe
for every layer and a pair of layernorms per layer, so the parameter count is WideNet's formula
(research/blocks.md §9.2); the cost model's FLOPs are the flop counter's for one sequence."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

import archc

SPEC = Path(__file__).resolve().parents[2] / "examples" / "widenet.arch"
TASK, DIMS = {"vocab": 65}, {"t": 32}


def _points(count: int) -> list[dict]:
    space, rng = archc.load(SPEC), random.Random(0)
    return [dict(space.sample(rng, task=TASK)) for _ in range(count)]


def _formula(p: dict, vocab: int = 65) -> int:
    d, e, layers = p["d"], p["layers.moe.experts"], p["layers"]
    hidden = round(p["layers.moe.expert.ratio"] * d)
    attention = 4 * (d * d + d)
    moe = d * e + e * (2 * d * hidden + hidden + d)
    return vocab * d + attention + moe + layers * 4 * d + 2 * d + d * vocab


@pytest.mark.parametrize("point", _points(4))
def test_widenet_parameters_are_shared_blocks_plus_per_layer_norms(point: dict) -> None:
    result = archc.compile(archc.load(SPEC), point, TASK, DIMS)
    module = result.module
    assert result.cost.params == _formula(point) == sum(p.numel() for p in module.parameters())
    norms = [m for m in module.modules() if isinstance(m, torch.nn.LayerNorm)]
    assert len(norms) == point["layers"] * 2 + 1, "every layer keeps its own norms"
    moes = {id(m) for m in module.modules() if type(m).__name__ == "Moe"}
    assert len(moes) == 1, "one moe for every layer"


def test_widenet_flops_are_the_flop_counters_for_one_sequence() -> None:
    for point in _points(3):
        result = archc.compile(archc.load(SPEC), point, TASK, DIMS)
        tokens = torch.randint(0, 65, (1, DIMS["t"]))
        with FlopCounterMode(display=False) as counter, sdpa_kernel(SDPBackend.MATH):
            result.module.eval()(tokens)
        assert counter.get_total_flops() == result.cost.flops
