"""Graph passes: GraphModule → GraphModule, listed once in `PASSES`, the graph linted after
each. Each pass states what it guarantees; none changes what the module computes.
"""

from __future__ import annotations

import operator
from collections.abc import Callable

from torch import fx

__all__ = ["PASSES", "run_passes", "prune_zero_edges", "remove_identities",
           "eliminate_dead_code"]


def prune_zero_edges(gm: fx.GraphModule) -> fx.GraphModule:
    """`a + zero(x)` becomes `a`: NAS-Bench-201's 'none' edges add nothing. A zero that is
    the only term stays (its output is a real, all-zero tensor)."""
    for node in list(gm.graph.nodes):
        if node.op != "call_function" or node.target is not operator.add:
            continue
        left, right = node.args
        keep = right if _is_zero(left) else left if _is_zero(right) else None
        if keep is not None:
            node.replace_all_uses_with(keep)
            gm.graph.erase_node(node)
    return gm


def remove_identities(gm: fx.GraphModule) -> fx.GraphModule:
    """Calls of `identity` blocks are replaced by their input."""
    for node in list(gm.graph.nodes):
        if node.op == "call_module" and node.meta.get("block") == "identity":
            node.replace_all_uses_with(node.args[0])
            gm.graph.erase_node(node)
    return gm


def eliminate_dead_code(gm: fx.GraphModule) -> fx.GraphModule:
    """Nodes whose results are never used are removed, and so are modules nobody calls."""
    gm.graph.eliminate_dead_code()
    gm.delete_all_unused_submodules()
    return gm


def _is_zero(arg: object) -> bool:
    return isinstance(arg, fx.Node) and arg.meta.get("block") == "zero"


PASSES: tuple[Callable[[fx.GraphModule], fx.GraphModule], ...] = (
    prune_zero_edges,
    remove_identities,
    eliminate_dead_code,
)


def run_passes(gm: fx.GraphModule) -> fx.GraphModule:
    for graph_pass in PASSES:
        gm = graph_pass(gm)
        gm.graph.lint()
    gm.recompile()
    return gm
