"""model.py: a GraphModule written out as one plain-PyTorch file.

The file holds, in order: a docstring saying how to load it; imports (torch and the standard
library only); what the graph's modules and functions need that torch lacks (archc's module
classes and helpers, copied — see `export_sources`); and the model class, named after the
space, whose `__init__` rebuilds every submodule (see `export_modules`) and whose `forward` is
the GraphModule's own code. A module shared by several calls (`loop`, `share = weights`) is
built once, as in the graph.

`check_rebuild` imports the written file and compares its model with the graph, so a module
that did not rebuild faithfully is an ExportError at export time, not a wrong model later.
"""

from __future__ import annotations

import os
import sys
import types
import uuid
from pathlib import Path
from typing import Any

import torch
from torch import fx, nn

from archc.compiler.export_modules import constructor
from archc.compiler.export_sources import ExportError, Names, rename, uses

__all__ = ["WEIGHTS", "model_source", "check_rebuild"]

WEIGHTS = "weights.safetensors"
"""The weights file next to model.py."""

_FX_BUILTINS = {"inf": "from math import inf", "nan": "from math import nan",
                "NoneType": "NoneType = type(None)", "device": "from torch import device"}
"""Names fx's generated code may use that are not plain objects to import (as in fx)."""

_HEADER = '''"""{cls}: the `{space}` space at the point in point.json, as plain PyTorch.

This file imports only torch and the standard library. Its weights are in {weights}:

    from model import {cls}
    model = {cls}.from_pretrained()  # needs `pip install safetensors`
    model.eval()
    y = model({call}){inputs}

or, loading them yourself:

    import safetensors.torch
    model = {cls}()
    safetensors.torch.load_model(model, "{weights}")

(`model.load_state_dict(safetensors.torch.load_file(...))` works too, unless the model ties
weights: safetensors stores a tied tensor once and `load_model` restores the tie.)
"""'''

_FROM_PRETRAINED = '''    @classmethod
    def from_pretrained(cls, weights: str | None = None) -> {cls}:
        """The model with the weights saved next to this file (or in `weights`)."""
        from safetensors.torch import load_model  # here: importing model.py needs torch only

        model = cls()
        path = weights or {os}.path.join({os}.path.dirname(__file__), "{file}")
        load_model(model, path)
        return model'''


def model_source(gm: fx.GraphModule, space: str, class_name: str) -> str:
    """The text of model.py for `gm`, the network of space `space`, as class `class_name`."""
    names = Names({class_name: gm})
    module_base = names.of(nn.Module, "Module")
    init = _init_lines(gm, names)
    forward = _forward(gm, names)
    tail = _FROM_PRETRAINED.format(cls=class_name, os=names.of(os, "os"), file=WEIGHTS)
    body = [f'    """The `{space}` network; `forward` is its torch.fx code."""', "",
            "    def __init__(self) -> None:", "        super().__init__()",
            *_indented(init, 8), "", forward, tail]
    head = [_header(gm, space, class_name), "from __future__ import annotations",
            _imports(names.imports)]
    parts = [*names.definitions, f"class {class_name}({module_base}):\n" + "\n".join(body)]
    after_imports = "\n\n\n" if parts[0].startswith(("class ", "def ", "@")) else "\n\n"
    return "\n\n".join(head) + after_imports + "\n\n\n".join(parts) + "\n"


def check_rebuild(path: Path, gm: fx.GraphModule, class_name: str) -> None:
    """Import model.py at `path`, build its model on the meta device (no memory, no init) and
    compare it with `gm`: module types, plain attributes, parameter and buffer shapes."""
    name = f"_archc_export_{uuid.uuid4().hex}"
    module = types.ModuleType(name)
    module.__file__ = str(path)
    sys.modules[name] = module  # dataclasses look classes' modules up here
    try:  # compiled by hand, not imported: no __pycache__ next to the export
        exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), vars(module))
        with torch.device("meta"):
            rebuilt = getattr(module, class_name)()
    finally:
        del sys.modules[name]
    want, got = _fingerprint(gm), _fingerprint(rebuilt)
    for key in sorted(want.keys() | got.keys()):
        if want.get(key) != got.get(key):
            raise ExportError(f"model.py does not rebuild {key[0] or 'the model'} faithfully: "
                              f"{key[1]} is {got.get(key)!r} there, {want.get(key)!r} in the "
                              "graph (does its class keep every __init__ argument unchanged "
                              "under its own name?)")


# ── __init__ ─────────────────────────────────────────────────────────────────────────────────

def _init_lines(gm: fx.GraphModule, names: Names) -> list[str]:
    """`self.x = …` for every submodule, parameter and buffer the graph holds."""
    stored = set(gm.state_dict(keep_vars=True)) | {name for name, _ in gm.named_modules()}
    for node in gm.graph.nodes:
        if node.op == "get_attr" and node.target not in stored:
            raise ExportError(f"the graph reads self.{node.target}, which is neither a module, "
                              "a parameter nor a persistent buffer, so no weights file holds "
                              "it: register it as a buffer")
    calls = _calls(gm)
    seen: dict[int, str] = {}
    return _assignments("self", gm, names, calls, seen, top=True)


def _assignments(target: str, module: nn.Module, names: Names, calls: dict[str, list[fx.Node]],
                 seen: dict[int, str], top: bool = False) -> list[str]:
    lines = []
    for child_name, child in module._modules.items():  # not named_children: it hides ties
        if child is None:
            continue
        where = f"{target}.{child_name}"
        path = where.removeprefix("self.")
        if id(child) in seen:  # one module under two names: tied, as in the graph
            lines.append(f"{where} = {seen[id(child)]}")
            continue
        seen[id(child)] = where
        if type(child) is nn.Module:  # a plain container made by a dotted target
            lines.append(f"{where} = {names.of(nn.Module, 'Module')}()")
            lines += _assignments(where, child, names, calls, seen)
            continue
        expression = constructor(child, names, path, width=99 - 8 - len(where) - 3)
        lines += _commented(f"{where} = {expression}", _comment(calls.get(path, [])))
    for kind, tensors in (("parameter", module._parameters), ("buffer", module._buffers)):
        for tensor_name, tensor in tensors.items():
            if tensor is not None:
                lines.append(_tensor_line(target, tensor_name, tensor, kind, module, names))
    if not lines and not top:
        lines.append("pass")
    return lines


def _tensor_line(target: str, name: str, tensor: torch.Tensor, kind: str, owner: nn.Module,
                 names: Names) -> str:
    """A parameter or buffer held directly (made by a graph pass): allocated empty here, its
    values come from the weights file."""
    torch_name = names.of(torch, "torch")
    dtype = str(tensor.dtype).removeprefix("torch.")
    empty = f"{torch_name}.empty({tuple(tensor.shape)}, dtype={torch_name}.{dtype})"
    if kind == "parameter":
        grad = "" if tensor.requires_grad else ", requires_grad=False"
        return f"{target}.{name} = {names.of(nn.Parameter, 'Parameter')}({empty}{grad})"
    if name in owner._non_persistent_buffers_set:
        raise ExportError(f"{target}.{name} is a non-persistent buffer: its values are in no "
                          "weights file, so model.py cannot restore them")
    return f"{target}.register_buffer({name!r}, {empty})"


def _calls(gm: fx.GraphModule) -> dict[str, list[fx.Node]]:
    calls: dict[str, list[fx.Node]] = {}
    for node in gm.graph.nodes:
        if node.op == "call_module":
            calls.setdefault(str(node.target), []).append(node)
    return calls


def _comment(calls: list[fx.Node]) -> str:
    """`layers[0].mlp (spec.arch:7:9)`: where the spec made the module, and how often a
    shared module is called."""
    path = calls[0].meta.get("path") if calls else None
    if not path:
        return ""
    span = calls[0].meta.get("span")
    file = Path(span.source.name).name if span is not None else ""  # no build machine paths
    where = f" ({file}:{span.line}:{span.column})" if span is not None else ""
    shared = f", called {len(calls)} times" if len(calls) > 1 else ""
    return f"{path}{where}{shared}"


def _commented(line: str, comment: str) -> list[str]:
    """The comment after the line if that fits in 99 columns (in __init__), else above it."""
    if not comment:
        return [line]
    if "\n" not in line and 8 + len(line) + 4 + len(comment) <= 99:
        return [f"{line}  # {comment}"]
    return [f"# {comment}", line]


def _indented(lines: list[str], by: int) -> list[str]:
    return [" " * by + part for line in lines for part in line.split("\n")]


# ── forward, header and imports ───────────────────────────────────────────────────────────────

def _forward(gm: fx.GraphModule, names: Names) -> str:
    """The GraphModule's code as a method, its global names bound in model.py."""
    code = gm.graph.python_code(root_module="self")
    renames = {}
    for name, value in code.globals.items():
        if not uses(code.src, name):
            continue
        line = _FX_BUILTINS.get(name)
        if line is None:
            renames[name] = names.of(value, getattr(value, "__name__", name))
        elif line.startswith(("import", "from")):
            names.imports.add(line)
        else:
            names.definitions.insert(0, line)
    globals_used = {new.split(".")[0] for new in renames.values()} | set(_FX_BUILTINS)
    if any(node.name in globals_used for node in gm.graph.nodes):
        code = _avoiding(gm.graph, globals_used).python_code(root_module="self")
    src = rename(code.src.strip("\n"), renames)
    return "\n".join("    " + line.rstrip() if line.strip() else "" for line in src.split("\n"))


def _avoiding(graph: fx.Graph, taken: set[str]) -> fx.Graph:
    """A copy of `graph` whose values avoid the names in `taken`. fx names a call's result
    after its function, so `squash = squash(x)` would make the global a local; here it becomes
    `squash_1 = squash(x)`."""
    new = fx.Graph()
    values: dict[fx.Node, fx.Node] = {}
    used = taken | {node.name for node in graph.nodes}
    for node in graph.nodes:
        name = node.name
        if name in taken:
            name = next(f"{node.name}_{i}" for i in range(1, len(used) + 2)
                        if f"{node.name}_{i}" not in used)
            used.add(name)
        args, kwargs = fx.map_arg((node.args, node.kwargs), values.__getitem__)
        values[node] = new.create_node(node.op, node.target, args, kwargs, name=name,
                                       type_expr=node.type)
        values[node].meta = node.meta
    return new


def _header(gm: fx.GraphModule, space: str, class_name: str) -> str:
    inputs = [n for n in gm.graph.nodes if n.op == "placeholder"]
    described = "; ".join(f"{n.name}: a batch of {n.meta['type']}" for n in inputs
                          if n.meta.get("type") is not None)
    return _HEADER.format(cls=class_name, space=space, weights=WEIGHTS,
                          call=", ".join(n.name for n in inputs),
                          inputs=f"  # {described}" if described else "")


def _imports(lines: set[str]) -> str:
    """Standard library, then torch, each with `import` lines before `from` lines (isort)."""
    def group(torch_group: bool) -> list[str]:
        chosen = [line for line in lines
                  if (line.split()[1].split(".")[0] == "torch") == torch_group]
        return sorted(chosen, key=lambda line: (line.startswith("from"), line.split()[1]))
    return "\n\n".join("\n".join(g) for g in (group(False), group(True)) if g)


# ── the rebuild check ─────────────────────────────────────────────────────────────────────────

def _fingerprint(model: nn.Module) -> dict[tuple[str, str], Any]:
    """What a rebuilt model must share with the graph: per module its type and plain attributes;
    per parameter and buffer its shape, dtype and whether it learns."""
    out: dict[tuple[str, str], Any] = {}
    for path, module in model.named_modules(remove_duplicate=False):
        if path:  # the roots differ (GraphModule vs the exported class)
            cls = type(module)  # copied classes may be renamed: their contents are compared
            out[path, "the type"] = cls.__qualname__ if _is_torch(cls) else "copied"
            for attr, value in vars(module).items():
                if not attr.startswith("_") and attr != "training" and _plain(value):
                    out[path, attr] = value
    for name, tensor in model.state_dict(keep_vars=True).items():
        out[name, "shape, dtype, grad"] = (tuple(tensor.shape), tensor.dtype,
                                           tensor.requires_grad)
    return out


def _is_torch(cls: type) -> bool:
    return cls.__module__.split(".")[0] == "torch"


def _plain(value: Any) -> bool:
    if isinstance(value, (tuple, list)):
        return all(_plain(v) for v in value)
    return isinstance(value, (int, float, str, bool, type(None)))
