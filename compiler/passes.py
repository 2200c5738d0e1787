"""Graph passes: GraphModule → GraphModule, listed once in `PASSES`, the graph linted after
each. Each pass states what it guarantees; none changes what the module computes.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import cast

import torch
from torch import fx

from archc.compiler.identity import ZERO_PRESERVING
from archc.library.tensor import TensorType

__all__ = ["PASSES", "run_passes", "prune_zero_edges", "remove_identities", "fold_constants",
           "eliminate_dead_code", "fuse_depth_into_width", "fuse_depth_into_collapse"]


def prune_zero_edges(gm: fx.GraphModule) -> fx.GraphModule:
    """Zeros are followed through the graph and dropped from sums, as `identity.prune` drops
    them from the Arch: a `zero` block is zero; a block f with f(0) = 0 (`ZERO_PRESERVING`)
    given zero is zero; `a + 0` is `a`. A zero that something still uses becomes a fresh
    `new_zeros` of its type, so what computed its input can go (NAS-Bench-201's 'none' edges)."""
    zeros: set[fx.Node] = set()
    for node in list(gm.graph.nodes):
        if node.op == "call_module" and (node.meta.get("block") == "zero" or (
                node.meta.get("block") in ZERO_PRESERVING and node.args[0] in zeros)):
            zeros.add(node)
        elif node.op == "call_function" and node.target is operator.add:
            terms = [arg for arg in node.args if arg not in zeros]
            if not terms:
                zeros.add(node)
            elif len(terms) == 1:
                node.replace_all_uses_with(terms[0])
                gm.graph.erase_node(node)
    for node in zeros:
        if node.users and node.graph is gm.graph:
            _replace_by_fresh_zeros(gm.graph, node)
    return gm


def _replace_by_fresh_zeros(graph: fx.Graph, node: fx.Node) -> None:
    with graph.inserting_before(node):
        fresh = fresh_zeros(graph, node.meta["type"])
    fresh.meta.update(node.meta)
    node.replace_all_uses_with(fresh)


def fresh_zeros(graph: fx.Graph, kind: TensorType) -> fx.Node:
    """A node making zeros of type `kind` with the batch size of the graph's first input.
    `new_zeros` keeps the dtype of the tensor it is called on, the first input: right for float
    inputs (float32 or float64 alike), wrong for token ids, so floats made from an int input
    are float32."""
    first = next(n for n in graph.nodes if n.op == "placeholder")
    batch = graph.call_method("size", (first, 0))
    token_ids = first.meta.get("type") is not None and first.meta["type"].dtype == "int"
    dtype: dict[str, fx.node.Argument] = (
        {"dtype": torch.float32} if token_ids and kind.dtype == "float" else {})
    return graph.call_method("new_zeros", (first, (batch, *kind.shape)), dtype)


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


def fold_constants(gm: fx.GraphModule) -> fx.GraphModule:
    """Functions and methods of constants only (buffers, parameters-free attributes, literals;
    no input) are computed once, stored as buffers `folded_<i>`, and read from there. Valid for
    deterministic, side-effect-free calls, which is all lowering emits."""
    values: dict[fx.Node, object] = {}
    for node in gm.graph.nodes:
        if node.op == "get_attr":
            values[node] = _attribute(gm, str(node.target))
        elif node.op in ("call_function", "call_method") and all(
                arg in values for arg in node.all_input_nodes):
            args = fx.node.map_arg(node.args, lambda n: cast(fx.node.Argument, values[n]))
            kwargs = fx.node.map_arg(node.kwargs, lambda n: cast(fx.node.Argument, values[n]))
            fn = node.target if node.op == "call_function" else getattr(args[0], node.target)
            values[node] = fn(*(args if node.op == "call_function" else args[1:]), **kwargs)
    for i, node in enumerate(n for n in values if n.op != "get_attr"):
        if all(user in values for user in node.users):
            continue  # only its constant users read it: they are folded themselves
        name = f"folded_{i}"
        gm.register_buffer(name, values[node])  # type: ignore[arg-type]
        with gm.graph.inserting_before(node):
            folded = gm.graph.get_attr(name)
        folded.meta.update(node.meta)
        node.replace_all_uses_with(folded)
    gm.graph.eliminate_dead_code()
    return gm


def fuse_depth_into_width(gm: fx.GraphModule) -> fx.GraphModule:
    """A site's depth connection whose streams only the next site's width connection reads is
    handed to that site: `conn(depth_connection(mixed, post, y))` becomes `conn(mixed, post,
    y)`, which `Connection.forward` computes as the two calls did (static hc in one pass each
    way, without storing the streams between the sites: `hyper_fused.depth_width`). Valid for
    every `hc_depth` node with that one user, the `hc_width` node's only argument."""
    return _hand_depth_to(gm, "hc_width")


def fuse_depth_into_collapse(gm: fx.GraphModule) -> fx.GraphModule:
    """The last site's depth connection, whose streams only the collapse reads, is handed to
    it: `collapse(depth_connection(mixed, post, y))` becomes `collapse(mixed, post, y)`, which
    `Collapse.forward` computes as the two calls did, up to rounding (the `sum` collapse as
    Σ mixed + (Σ post)·y, without forming the streams). Valid as `fuse_depth_into_width`."""
    return _hand_depth_to(gm, "collapse")


def _hand_depth_to(gm: fx.GraphModule, block: str) -> fx.GraphModule:
    """Every `hc_depth` node whose one user is a `block` module taking it as its only argument
    hands that module its own arguments (mixed, post, y) instead."""
    for node in list(gm.graph.nodes):
        if node.op != "call_function" or node.meta.get("block") != "hc_depth":
            continue
        users = list(node.users)
        if (len(users) == 1 and users[0].op == "call_module"
                and users[0].meta.get("block") == block
                and users[0].args == (node,) and not users[0].kwargs):
            users[0].args = node.args
            gm.graph.erase_node(node)
    return gm


def _attribute(gm: fx.GraphModule, target: str) -> object:
    value: object = gm
    for part in target.split("."):
        value = getattr(value, part)
    return value


def _is_zero(arg: object) -> bool:
    return isinstance(arg, fx.Node) and arg.meta.get("block") == "zero"


PASSES: tuple[Callable[[fx.GraphModule], fx.GraphModule], ...] = (
    prune_zero_edges,
    remove_identities,
    fold_constants,
    eliminate_dead_code,
    fuse_depth_into_width,
    fuse_depth_into_collapse,
)


def run_passes(gm: fx.GraphModule) -> fx.GraphModule:
    """Every pass in order, linting after each; the code is regenerated only if a pass changed
    the graph (regenerating it is a third of lowering's time on a 24-layer model)."""
    before = [(n.op, n.target, n.args) for n in gm.graph.nodes]
    for graph_pass in PASSES:
        gm = graph_pass(gm)
        gm.graph.lint()
    if [(n.op, n.target, n.args) for n in gm.graph.nodes] != before:
        gm.recompile()
    return gm
