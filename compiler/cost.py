"""The cost model: parameters, FLOPs and activation memory of an Arch, from the blocks' own
formulas — no weights are allocated, so it is cheap enough to run before every trial.

Counting conventions: parameters once per module (weights shared by `loop` or
`share = weights` count once); FLOPs per example as torch's flop counter counts them (twice the
multiply-adds of matmuls, convolutions and attention); activation memory as the bytes of every
node's output per example in float32 — an upper bound on what training keeps for backward.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from archc.compiler import hyper
from archc.compiler.arch import Arch
from archc.dsl.domain import Scalar
from archc.dsl.space import Space
from archc.dsl.walk import Unknown, evaluate
from archc.errors import Diagnostic, PointError
from archc.library.base import rules
from archc.library.tensor import TensorType

__all__ = ["Cost", "cost", "counts", "check_deferred"]


@dataclass(frozen=True)
class Cost:
    params: int
    flops: int
    activation_bytes: int

    def as_metrics(self) -> dict[str, float]:
        """The names a `require` reads: params, flops, memory (latency is measured later)."""
        return {"$params": self.params, "$flops": self.flops,
                "$memory": self.activation_bytes}


def cost(arch: Arch) -> Cost:
    """Totals over the Arch as given; pass it through `identity.prune` first to count only
    what reaches the output (as the lowered, dead-code-eliminated module does)."""
    params = flops = activations = 0
    counted: set[str] = set()
    for node, data in arch.graph.nodes(data=True):
        if data["kind"] != "hc_width":  # its tuple is counted by its items
            activations += 4 * data["type"].numel * data.get("streams", 1)
        if data["kind"] not in ("block", *hyper.KINDS):
            continue
        args = arch.args(node)
        if not args:  # a zero whose input was pruned: no parameters, no FLOPs
            continue
        own, work = counts(data, arch.type_of(args[0]))
        flops += work
        key = data.get("share") or f"#{node}"
        if key not in counted:
            counted.add(key)
            params += own
    return Cost(params, flops, activations)


def counts(data: dict[str, Any], x: TensorType) -> tuple[int, int]:
    """(parameters, FLOPs) of a block or hyper-connection node given its input type."""
    if data["kind"] in hyper.KINDS:
        return hyper.params(data, x), hyper.flops(data, x)
    impl = rules(data["name"])
    return impl.params(data["h"], x), impl.flops(data["h"], x)


def check_deferred(space: Space, point: Mapping[str, Scalar], measured: Cost) -> None:
    """Raise PointError for each `require` over compiled properties that the point violates
    (conditions over `latency` wait for a measurement)."""
    trace = space.trace(point)
    scope = {**trace.scope(), **measured.as_metrics()}
    problems = []
    for req, indices in trace.requires:
        if not req.deferred:
            continue
        try:
            ok = evaluate(req.cond, scope, indices)
        except (Unknown, KeyError):
            continue  # latency: not known before the model runs
        if not ok:
            problems.append(Diagnostic(
                f"the point violates `require {req.text}` (params = {measured.params:,}, "
                f"flops = {measured.flops:,})", req.span))
    if problems:
        raise PointError(problems)
