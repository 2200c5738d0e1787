"""Every example whose blocks are implemented compiles for 100 seeded points (30 for the two
hyper-connected LMs, see FEWER): a GraphModule, or — for points the spec itself rules out (a
compiled-property `require`) — a located user error, never a traceback. A few of them also run
forward and backward."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

import archc
from archc.compiler.export import example_inputs_of
from archc.dsl import ir
from archc.errors import ArchError
from archc.library import REGISTRY
from archc.library.base import implementation

ROOT = Path(__file__).resolve().parents[2]
TASKS = {"digits": {"classes": 10}, "mnist1d": {"classes": 10}, "nb201": {"classes": 10},
         "charlm": {"vocab": 65}, "listops": {"vocab": 20, "classes": 10}}
ROUTED = {"moe"}
"""Blocks whose counted FLOPs depend on the routing of the example (the batched dispatch pads
every expert to the busiest one's tokens, so identical tokens, all sent to one expert, count
e times the cost model's routed work): their points skip the FLOP comparison."""
DIMS = {"t": 16}
"""Symbolic input sizes (`int[t]` of the language models): short sequences keep this fast."""
POINTS = 100
FEWER = {"hc_lm": 30, "hyperloop": 30}
"""Examples checked on fewer points, to keep the default run short: a point of these LMs takes
~0.2 s (sampling hc_lm's space, building 1-4 M parameters) against ~0.05 s for the others."""


def _blocks(node: object) -> set[str]:
    """Every block name a space can use, in any branch."""
    found: set[str] = set()
    if isinstance(node, ir.Block):
        found.add(node.name)
    for value in vars(node).values() if hasattr(node, "__dict__") else ():
        items = value if isinstance(value, tuple) else (value,)
        for item in items:
            for part in item if isinstance(item, tuple) else (item,):
                if isinstance(part, ir.Node):
                    found |= _blocks(part)
    return found


def _compilable() -> list[Path]:
    out = []
    for path in sorted((ROOT / "examples").glob("*.arch")):
        if path.name == "nb201_cell.arch":
            continue
        space = archc.load(path)
        body_blocks = {"residual", "loop", "hyper", "hyperloop"}  # wired by the compiler
        if all(implementation(b) or b in body_blocks or REGISTRY[b].kind == "mix"
               for b in _blocks(space.root)):
            out.append(path)
    return out


EXAMPLES = _compilable()


def test_the_implemented_examples_are_the_expected_ones() -> None:
    assert {p.stem for p in EXAMPLES} >= {"digits_cnn", "mnist1d", "nb201"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_compiles_for_100_seeded_points(path: Path) -> None:
    space = archc.load(path)
    task = TASKS[str(space.search.get("task", "digits"))]
    rng = random.Random(0)
    built = refused = 0
    points = FEWER.get(path.stem, POINTS)
    for i in range(points):
        point = space.sample(rng, uniform="arch" if i % 2 else "decision", task=task)
        try:
            result = archc.compile(space, point, task, DIMS)
        except ArchError as err:  # only a compiled-property require may refuse a point
            assert all(d.span is not None for d in err.diagnostics), err.render()
            assert "require" in err.render(), err.render()
            refused += 1
            continue
        built += 1
        assert result.cost.params == sum(p.numel() for p in result.module.parameters())
        if i < 5:
            _forward_backward(result.module)
            if any(data["name"] in ROUTED for _, data in result.arch.blocks()):
                continue
            assert abs(_counted_flops(result.module) - result.cost.flops) <= \
                0.05 * result.cost.flops
    assert built + refused == points and built > points // 2


def _counted_flops(module: torch.fx.GraphModule) -> int:
    """FLOPs per example by torch's counter (attention through the math kernel: the fused CPU
    kernel is not in the counter's table)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, sdpa_kernel(SDPBackend.MATH):
        module.eval()(*example_inputs_of(module, 1))
    module.train()
    return counter.get_total_flops()


def _forward_backward(module: torch.fx.GraphModule) -> None:
    out = module(*example_inputs_of(module, 2))
    out.float().pow(2).mean().backward()
    assert torch.isfinite(out).all()

