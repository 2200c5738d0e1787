"""The one traversal of a space's decisions, in a fixed canonical order.

Sampling, validation, completion and the sequential interface MCTS uses are all this walk with a
different `decide` callback: the walk visits each *active* decision site (a decision inside an
unchosen branch, a false `optional` or an absent repeat copy is never visited), asks the callback
for its value, and records it. Paths are concrete here: `layers[*].x` becomes `layers[3].x`.
"""

from __future__ import annotations

import operator
from collections import ChainMap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from archc.dsl import ir
from archc.dsl.domain import Choice, Domain, Flag, Scalar

__all__ = ["Site", "Trace", "walk", "concrete", "evaluate", "Unknown", "site_domain"]


@dataclass(frozen=True)
class Site:
    """A decision met by the walk: its concrete path, the node, and the values it may take."""

    path: str
    node: ir.Node
    domain: Domain

    @property
    def options(self) -> Sequence[Scalar]:
        """The values this decision may take, in canonical order (discrete domains only; a
        float range is continuous: sample it with `domain.sample`)."""
        return self.domain.values()


@dataclass
class Trace:
    """What one walk saw: the active sites in order, their values, and the active conditions."""

    sites: list[Site] = field(default_factory=list)
    values: dict[str, Scalar] = field(default_factory=dict)
    requires: list[tuple[ir.Require, tuple[int, ...]]] = field(default_factory=list)
    derived: dict[str, Scalar] = field(default_factory=dict)

    def scope(self) -> Mapping[str, Scalar]:
        """Decisions and the values of `let`s computed from them, for evaluating conditions."""
        return ChainMap(self.values, self.derived)


Decide = Callable[[Site], Scalar]


class Unknown(Exception):
    """A value needs something the walk does not have (a task constant)."""


def concrete(template: str, indices: tuple[int, ...]) -> str:
    """Fill the `[*]` of a path template with copy indices, outermost first."""
    if "[*]" not in template:
        return template
    parts = template.split("[*]")
    out = [parts[0]]
    for index, rest in zip(indices, parts[1:], strict=False):
        out.append(f"[{index}]{rest}")
    return "".join(out)


def site_domain(node: ir.Node) -> Domain:
    """The domain of a decision site: a `Switch`/`Choose` chooses among its keys."""
    if isinstance(node, ir.Decide):
        return node.domain
    if isinstance(node, (ir.Switch, ir.Choose)):
        return Choice(tuple(key for key, _ in node.options))
    if isinstance(node, ir.Maybe):
        return Flag()
    if isinstance(node, ir.Repeat) and isinstance(node.count, ir.Decide):
        return node.count.domain
    raise TypeError(f"not a decision site: {type(node).__name__}")


def walk(root: ir.Node, decide: Decide) -> Trace:
    """Visit every active decision of `root` in canonical order; `decide` gives each value."""
    trace = Trace()
    _Walker(trace, decide).node(root, ())
    return trace


class _Walker:
    def __init__(self, trace: Trace, decide: Decide) -> None:
        self.trace = trace
        self.decide = decide

    def site(self, node: ir.Decide | ir.Switch | ir.Choose | ir.Maybe | ir.Repeat,
             indices: tuple[int, ...]) -> Scalar:
        """Ask for the value of a decision site (a repeat's count is asked with the Repeat as
        its node, so that a sampler can weigh counts by the size of the body)."""
        site = Site(concrete(node.path, indices), node, site_domain(node))
        value = self.decide(site)
        self.trace.sites.append(site)
        self.trace.values[site.path] = value
        return value

    def node(self, node: ir.Node | None, ix: tuple[int, ...]) -> None:
        match node:
            case ir.Decide():
                self.site(node, ix)
            case ir.Switch() | ir.Choose():
                key = self.site(node, ix)
                self.node(dict(node.options)[str(key)], ix)
            case ir.Maybe():
                if self.site(node, ix):
                    self.node(node.body, ix)
            case ir.Repeat():
                self.repeat(node, ix)
            case ir.Require():
                self.trace.requires.append((node, ix))
            case ir.Seq():
                for step in node.steps:
                    self.node(step, ix)
            case ir.Block():
                for _, value in node.args:
                    self.node(value, ix)
                self.node(node.body, ix)
            case ir.Op():
                for arg in node.args:
                    self.node(arg, ix)
            case ir.Let():
                self.node(node.value, ix)
                self.derive(node, ix)
            case ir.Apply():
                self.node(node.block, ix)
            case ir.Bind() | ir.Return():
                self.node(node.flow, ix)
            case ir.Applied():
                self.node(node.block, ix)
                for flow in node.inputs:
                    self.node(flow, ix)
            case ir.Merge():
                for flow in node.items:
                    self.node(flow, ix)
            case ir.Inline() | ir.DefBlock():
                self.node(node.body, ix)
            case _:
                pass  # constants, references, inputs: no decisions

    def derive(self, node: ir.Let, ix: tuple[int, ...]) -> None:
        """Record the scalar a `let` computes from decisions, for conditions that use it."""
        if isinstance(node.value, (ir.Op, ir.Ref)):
            try:
                value = evaluate(node.value, self.trace.scope(), ix)
            except (Unknown, KeyError, TypeError, ArithmeticError, ValueError):
                return
            self.trace.derived[concrete(node.path, ix)] = value

    def repeat(self, node: ir.Repeat, ix: tuple[int, ...]) -> None:
        count = self.site(node, ix) if isinstance(node.count, ir.Decide) else \
            evaluate(node.count, self.trace.values, ix)
        if node.share != "none":
            self.node(node.body, ix)
            return
        for i in range(int(count)):
            self.node(node.body, (*ix, i))


_BINARY: dict[str, Callable[[Scalar, Scalar], Scalar]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
    "//": operator.floordiv, "%": operator.mod, "**": lambda a, b: _power(a, b),
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
    ">": operator.gt, ">=": operator.ge,
}


MAX_EXPONENT = 64


def _power(base: Scalar, exponent: Scalar) -> Scalar:
    """`**` that refuses what would hang or leave the reals: huge integer powers, complex
    roots. Both raise ArithmeticError/ValueError, which conditions treat as violated."""
    if isinstance(exponent, int) and isinstance(base, int) and abs(base) > 1 \
            and abs(exponent) > MAX_EXPONENT:
        raise OverflowError("integer power too large")
    result = operator.pow(base, exponent)
    if isinstance(result, complex):
        raise ValueError("a negative number to a fractional power is not real")
    return result


def evaluate(value: ir.Value, values: Mapping[str, Scalar], indices: tuple[int, ...] = (),
             task: Mapping[str, Scalar] | None = None) -> Scalar:
    """The scalar a value holds under a point. Raises `Unknown` for a task constant that
    `task` does not give, KeyError for a decision the point lacks, ArithmeticError for `x / 0`."""
    match value:
        case ir.Const():
            return value.value
        case ir.Ref() | ir.Decide() | ir.Switch():
            return values[concrete(value.path, indices)]
        case ir.TaskConst():
            if task is None or value.name not in task:
                raise Unknown(value.name)
            return task[value.name]
        case ir.Op(op="and"):
            return all(evaluate(a, values, indices, task) for a in value.args)
        case ir.Op(op="or"):
            return any(evaluate(a, values, indices, task) for a in value.args)
        case ir.Op(op="not"):
            return not evaluate(value.args[0], values, indices, task)
        case ir.Op(op="neg"):
            operand = evaluate(value.args[0], values, indices, task)
            if isinstance(operand, str):
                raise TypeError("a string has no negative")
            return -operand
        case ir.Op():
            left, right = (evaluate(a, values, indices, task) for a in value.args)
            return _BINARY[value.op](left, right)
    raise TypeError(f"{type(value).__name__} has no scalar value")

