"""One call from a point to a model: decode, cost, compiled-property constraints, lowering.

>>> import archc
>>> space = archc.loads("space s {\\n input x: float[4]\\n linear(choice(8, 16))\\n}")
>>> built = compile_point(space, {"linear.out": 8})
>>> built.cost.params, tuple(built.module(__import__("torch").zeros(2, 4)).shape)
(40, (2, 8))
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from torch import fx, nn

from archc.compiler.arch import Arch
from archc.compiler.cost import Cost, check_deferred, cost
from archc.compiler.decode import decode
from archc.compiler.identity import prune
from archc.compiler.lower import lower
from archc.dsl.point import Point
from archc.dsl.space import Space

__all__ = ["Compiled", "compile_point"]


@dataclass(frozen=True)
class Compiled:
    """A point made concrete: its Arch, its cost, and the GraphModule computing it."""

    point: Point
    arch: Arch
    cost: Cost
    module: fx.GraphModule

    def inductor(self, **options: Any) -> nn.Module:
        """The module compiled by `torch.compile` (inductor): opt-in, since compiling takes
        seconds to minutes and pays off only over many steps. Options go to torch.compile."""
        import torch
        return torch.compile(self.module, backend="inductor", **options)  # type: ignore[return-value]


def compile_point(space: Space, point: Mapping[str, Any], task: Mapping[str, Any] | None = None,
                  dims: Mapping[str, int] | None = None, passes: bool = True) -> Compiled:
    """Decode `point`; check `require params/flops/memory < …` on the cost model of what can
    change the output (`identity.prune`), before any weight exists; lower to torch.fx, whose
    passes drop the same dead parts. User errors are ArchErrors with spec locations."""
    arch = decode(space, point, task, dims)
    measured = cost(prune(arch))
    check_deferred(space, point, measured)
    return Compiled(Point(point), arch, measured, lower(arch, passes))  # decode validated it
