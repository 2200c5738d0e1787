"""The arithmetic behind sampling: subtree sizes, size-weighted choices, constraint checks.

Uniform sampling over architectures needs, at every branch, the number of points beneath each
option; `Sizes` computes them once per node (big integers, exact). Choices are made with integer
arithmetic (`randrange` over the total), so spaces of 10^100 points stay exactly uniform.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from typing import cast

from archc.dsl import ir
from archc.dsl.domain import Scalar
from archc.dsl.walk import Site, Trace, Unknown, evaluate

__all__ = ["Sizes", "choose_uniform_arch", "failing_requires"]


class Sizes:
    """Memoised number of points under each node of a space (a float decision counts once)."""

    def __init__(self) -> None:
        self._memo: dict[int, int] = {}
        self._keep: list[ir.Node] = []  # keeps ids stable while memoised

    def of(self, node: ir.Node | None) -> int:
        if node is None:
            return 1
        key = id(node)
        if key not in self._memo:
            self._memo[key] = self._size(node)
            self._keep.append(node)
        return self._memo[key]

    def _size(self, node: ir.Node) -> int:
        match node:
            case ir.Decide():
                return node.domain.size
            case ir.Switch() | ir.Choose():
                return sum(self.of(v) for _, v in node.options)
            case ir.Maybe():
                return 1 + self.of(node.body)
            case ir.Repeat():
                return sum(self.repeat_weights(node).values())
            case ir.Seq():
                return math.prod(self.of(s) for s in node.steps)
            case ir.Block():
                return math.prod(self.of(v) for _, v in node.args) * self.of(node.body)
            case ir.Op():
                return math.prod(self.of(a) for a in node.args)
            case ir.Let():
                return self.of(node.value)
            case ir.Apply():
                return self.of(node.block)
            case ir.Bind() | ir.Return():
                return self.of(node.flow)
            case ir.Applied():
                return self.of(node.block) * math.prod(self.of(f) for f in node.inputs)
            case ir.Merge():
                return math.prod(self.of(f) for f in node.items)
            case ir.Inline() | ir.DefBlock():
                return self.of(node.body)
        return 1

    def repeat_weights(self, node: ir.Repeat) -> dict[int, int]:
        """Points under a repeat for each count: body^n for own copies, body if shared."""
        body = self.of(node.body)
        counts = node.count.domain.values() if isinstance(node.count, ir.Decide) else (
            cast(ir.Const, node.count).value,)
        return {int(n): body if node.share != "none" else body ** int(n) for n in counts}


def choose_uniform_arch(site: Site, sizes: Sizes, rng: random.Random) -> Scalar:
    """The value of `site` drawn with probability proportional to the points it leads to."""
    node = site.node
    weights: Mapping[Scalar, int]
    if isinstance(node, ir.Switch | ir.Choose):
        weights = {key: sizes.of(v) for key, v in node.options}
    elif isinstance(node, ir.Maybe):
        weights = {False: 1, True: sizes.of(node.body)}
    elif isinstance(node, ir.Repeat):
        weights = cast(Mapping[Scalar, int], sizes.repeat_weights(node))
    else:
        return site.domain.sample(rng)
    ticket = rng.randrange(sum(weights.values()))
    for value, weight in weights.items():
        if ticket < weight:
            return value
        ticket -= weight
    raise AssertionError("unreachable: the ticket is below the total")


def failing_requires(trace: Trace, task: Mapping[str, Scalar] | None) -> list[ir.Require]:
    """The active, non-deferred `require`s the walked point violates. A condition over a task
    constant that `task` does not give is not judged here (it is judged once the task is known);
    one whose arithmetic fails (x / 0) is violated."""
    failed = []
    scope = trace.scope()
    for req, indices in trace.requires:
        if req.deferred:
            continue
        try:
            ok = evaluate(req.cond, scope, indices, task)
        except Unknown:
            continue
        except (ArithmeticError, ValueError, TypeError):
            ok = False
        if not ok:
            failed.append(req)
    return failed
