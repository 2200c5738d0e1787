"""Arch → torch.fx GraphModule, built node by node with the Graph API (nothing is traced).

Every fx node carries `meta["span"]` (where the spec wrote it), `meta["path"]` (its decision
path) and `meta["block"]`; modules are named after paths (`layers_2_mlp`), so `print(gm.code)`
reads like the spec. Modules shared by `loop` or `share = weights` are one submodule called
several times. The graph passes of `passes.py` run after lowering.
"""

from __future__ import annotations

import operator
import re
from typing import Any

import torch
from torch import fx, nn

from archc.compiler import hyper
from archc.compiler.arch import Arch
from archc.compiler.passes import fresh_zeros, run_passes
from archc.library.base import rules

__all__ = ["lower", "module_name", "class_name"]


def module_name(path: str, taken: set[str]) -> str:
    """A Python identifier for a path, unique among `taken`: `layers[2].mlp#2` → layers_2_mlp_2."""
    name = re.sub(r"\W+", "_", path).strip("_") or "block"
    if name[0].isdigit():
        name = f"m_{name}"
    base, n = name, 1
    while name in taken:
        n += 1
        name = f"{base}_{n}"
    taken.add(name)
    return name


def lower(arch: Arch, passes: bool = True) -> fx.GraphModule:
    """The GraphModule computing `arch` on batched inputs (b, *shape)."""
    graph = fx.Graph()
    root = nn.Module()
    values: dict[int, fx.Node] = {}
    shared: dict[str, str] = {}
    taken: set[str] = set()
    for node, data in arch.graph.nodes(data=True):
        args = [values[a] for a in arch.args(node)]
        values[node] = fx_node = _emit(graph, root, arch, node, data, args, shared, taken)
        fx_node.meta.update(span=data.get("span"), path=data.get("path"), block=data["name"],
                            type=data["type"])
    graph.output(values[arch.output])
    gm = fx.GraphModule(root, graph, class_name=class_name(arch.name))
    if passes:
        gm = run_passes(gm)
    return gm


def _emit(graph: fx.Graph, root: nn.Module, arch: Arch, node: int, data: dict[str, Any],
          args: list[fx.Node], shared: dict[str, str], taken: set[str]) -> fx.Node:
    kind = data["kind"]
    if kind == "input":
        return graph.placeholder(module_name(data["name"], taken))
    if kind == "add":
        total = args[0]
        for arg in args[1:]:
            total = graph.call_function(operator.add, (total, arg))
            total.meta["type"] = data["type"]  # every partial sum: passes read its type
        return total
    if kind == "concat":
        return graph.call_function(torch.cat, (args,), {"dim": data["type"].feature_axis + 1})
    if kind == "hc_item":  # named after the site: layers_0_residual_hc_input, …_mixed, …_post
        item = data["h"].item
        return graph.create_node("call_function", operator.getitem, (args[0], item),
                                 name=f"{args[0].name}_{('input', 'mixed', 'post')[item]}")
    if kind in ("expand", "hc_depth"):
        extra = (data["h"].streams,) if kind == "expand" else ()
        return graph.call_function(hyper.function(kind), (*args, *extra))
    if not args:  # a zero whose input was pruned: zeros of its type, batch size of input 0
        return fresh_zeros(graph, data["type"])
    key = data.get("share")
    if key in shared:
        return graph.call_module(shared[key], tuple(args))
    name = module_name(data["path"], taken)
    x = arch.type_of(arch.args(node)[0])
    root.add_module(name, hyper.build(data, x) if kind in hyper.KINDS else
                    rules(data["name"]).build(data["h"], x))
    if key:
        shared[key] = name
    return graph.call_module(name, tuple(args))


def class_name(space: str) -> str:
    """`hc_lm` → `HcLm`: the GraphModule's (and the exported file's) class name."""
    return "".join(part.capitalize() for part in re.split(r"[\W_]+", space) if part) or "Model"
