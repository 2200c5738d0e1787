"""Constructor expressions: how model.py's `__init__` rebuilds each module of the graph.

A module is rebuilt by calling its class with its own attributes, the convention torch.nn
follows (`nn.Linear` keeps `in_features`, `out_features`): for each argument of the class's
`__init__`, the attribute of the same name. A tensor-or-None attribute for a bool argument
(`bias`) means "present"; a module attribute is rebuilt in turn (`MoveAxis(nn.LayerNorm(16),
1, -1)`). Required arguments are written positionally, the others by keyword when they differ
from the default, and always for the few in `SHOWN` that a reader looks for.

So archc's own module classes must keep every `__init__` argument, unchanged, under its own
name (`self.heads = heads`); a class taking `**kwargs` gets back, by keyword, every public
plain attribute (int, float, str, bool, None) that is not a named argument — so it keeps each
keyword argument under its name and nothing else public in plain attributes. `export_code`
rebuilds the model and compares every attribute, buffer and parameter shape, so a class that
does not is an ExportError, never a wrong model.

>>> from torch import nn
>>> from archc.compiler.export_sources import Names
>>> constructor(nn.Conv2d(3, 8, 3, padding=1, bias=False), Names({}), "conv")
'nn.Conv2d(3, 8, 3, padding=1, bias=False)'
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn

from archc.compiler.export_sources import ExportError, Names

__all__ = ["SHOWN", "constructor"]

SHOWN: dict[type[nn.Module], tuple[str, ...]] = {
    nn.Linear: ("bias",),
    nn.Conv1d: ("bias",),
    nn.Conv2d: ("bias",),
    nn.LayerNorm: ("eps",),
    nn.RMSNorm: ("eps",),
    nn.BatchNorm1d: ("eps", "momentum"),
    nn.BatchNorm2d: ("eps", "momentum"),
    nn.Dropout: ("p",),
}
"""Keyword arguments written even at their default, for reading (`nn.Linear(16, 8, bias=True)`
says the layer has a bias). Every other torch.nn type the library builds goes through the
generic rule and shows only what differs from the default."""

_SQUARE = {"kernel_size", "stride", "padding", "dilation", "output_size"}
"""torch stores these as (k, k) whatever it was given; model.py writes the plain k."""

_SKIPPED = {"device", "dtype"}
"""Factory arguments: where and in which type to allocate, not what to build."""

_ATTRIBUTES: dict[tuple[type[nn.Module], str], Any] = {
    (nn.MultiheadAttention, "bias"): lambda m: m.in_proj_bias is not None,
    (nn.MultiheadAttention, "add_bias_kv"): lambda m: m.bias_k is not None,
}
"""Arguments torch itself keeps under another name."""

_MISSING = object()


def constructor(module: nn.Module, names: Names, path: str, width: int = 80) -> str:
    """Python source that builds a module like `module` (weights aside), one argument per line
    if it is wider than `width`; `path` names the module in error messages."""
    cls = type(module)
    if cls in (nn.Sequential, nn.ModuleList):
        children = [m for m in module._modules.values() if m is not None]
        items = [constructor(m, names, f"{path}.{i}", width - 4) for i, m in enumerate(children)]
        if cls is nn.Sequential and list(module._modules) != [str(i) for i in range(len(items))]:
            raise ExportError(f"{path}: an nn.Sequential with named children cannot be written")
        inner = ",\n".join(items)
        body = f"[\n{_indent(inner)},\n]" if cls is nn.ModuleList else f"\n{_indent(inner)},\n"
        return f"{names.of(cls, cls.__name__, path)}({body})"
    if cls is nn.ModuleDict:
        pairs = ",\n".join(f"{names.expression(k, path)}: "
                            f"{constructor(m, names, f'{path}.{k}', width - 4)}"
                            for k, m in module._modules.items() if m is not None)
        return f"{names.of(cls, cls.__name__, path)}({{\n{_indent(pairs)},\n}})"
    args = _arguments(module, names, path, width - 4)
    return _call(names.of(cls, cls.__name__, path), args, width)


def _arguments(module: nn.Module, names: Names, path: str, width: int) -> list[str]:
    """torch's classes: required arguments by position, the rest by keyword if not default.
    Copied classes: every argument by keyword (`Attention(d=16, heads=2, …)` reads better
    than seven bare values)."""
    cls = type(module)
    try:
        parameters = inspect.signature(cls.__init__).parameters.values()
    except (TypeError, ValueError):
        return []
    shown, out = SHOWN.get(cls, ()), []
    positional = _is_torch(cls)
    arguments = list(parameters)[1:]  # self
    for param in arguments:
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD) or param.name in _SKIPPED:
            positional = False
            continue
        value = _attribute(module, param.name, param.default)
        required = param.default is param.empty
        if value is _MISSING:
            if required:
                raise ExportError(_missing_message(cls, param.name, path))
            positional = False  # an unknown optional argument: keep its default
            continue
        if _is_torch(cls):
            value = _plain(param.name, value)
        source = _source(value, names, f"{path}.{param.name}", width)
        if required and positional and param.kind != param.KEYWORD_ONLY:
            out.append(source)
            continue
        positional = False
        if param.name in shown or not _equal(value, param.default) or not _is_torch(cls):
            out.append(f"{param.name}={source}")
    if not _is_torch(cls) and any(p.kind == p.VAR_KEYWORD for p in arguments):
        named = {p.name for p in arguments}
        out += [f"{name}={names.expression(value, f'{path}.{name}')}"
                for name, value in vars(module).items()
                if name not in named and name not in _MODULE_STATE and not name.startswith("_")
                and isinstance(value, (int, float, str, bool, type(None)))]
    return out


_MODULE_STATE = frozenset(vars(nn.Module()))
"""What every nn.Module keeps in its __dict__ (`training`, …): not an `__init__` argument."""


def _attribute(module: nn.Module, name: str, default: Any) -> Any:
    """The value of the `__init__` argument `name`, read back from the module."""
    rule = _ATTRIBUTES.get((type(module), name))
    if rule is not None:
        return rule(module)
    if name.startswith("_") and default is not inspect.Parameter.empty:
        return _MISSING  # private arguments (nn.Embedding's _weight) keep their defaults
    value = getattr(module, name, _MISSING)
    if isinstance(default, bool) and (value is None or isinstance(value, torch.Tensor)):
        return value is not None  # bias=True: the module has a bias tensor
    return value


def _plain(name: str, value: Any) -> Any:
    if name in _SQUARE and isinstance(value, tuple) and value and len(set(value)) == 1:
        return value[0]
    if name == "normalized_shape" and isinstance(value, tuple) and len(value) == 1:
        return value[0]
    return value


def _source(value: Any, names: Names, path: str, width: int) -> str:
    if isinstance(value, nn.Module):
        return constructor(value, names, path, width)
    if isinstance(value, (list, tuple)) and any(isinstance(v, nn.Module) for v in value):
        items = ", ".join(_source(v, names, f"{path}[{i}]", width)
                          for i, v in enumerate(value))
        return f"[{items}]" if isinstance(value, list) else f"({items},)"
    if isinstance(value, torch.dtype):
        return f"{names.of(torch, 'torch', path)}.{str(value).removeprefix('torch.')}"
    if isinstance(value, torch.Tensor):
        raise ExportError(f"{path} is a tensor; pass sizes to __init__ and make the tensor "
                          "there (its values travel in the weights file)")
    return names.expression(value, path)


def _equal(value: Any, default: Any) -> bool:
    try:
        return bool(type(value) is type(default) and value == default)
    except (RuntimeError, TypeError, ValueError):
        return False


def _is_torch(cls: type) -> bool:
    return cls.__module__.split(".")[0] == "torch"


def _missing_message(cls: type, name: str, path: str) -> str:
    return (f"{path}: cannot rebuild {cls.__module__}.{cls.__qualname__}: its __init__ takes "
            f"{name!r}, but the module keeps no attribute of that name. model.py rebuilds a "
            f"module by calling its class with its own attributes, as torch.nn does: store "
            f"every __init__ argument unchanged under its own name (self.{name} = {name})")


def _call(name: str, args: list[str], width: int) -> str:
    """`name(args)` on one line if it fits in `width`; else the arguments after a hanging
    indent, packed into lines, or one per line if one of them spans lines itself."""
    call = f"{name}({', '.join(args)})"
    if len(call) <= width or not args:
        return call
    if any("\n" in arg for arg in args):
        one_per_line = _indent(",\n".join(args))
        return f"{name}(\n{one_per_line},\n)"
    lines = [args[0]]
    for arg in args[1:]:
        if len(lines[-1]) + len(arg) + 8 > width:
            lines[-1] += ","
            lines.append(arg)
        else:
            lines[-1] += f", {arg}"
    return f"{name}(\n{_indent(chr(10).join(lines))})"


def _indent(text: str) -> str:
    return "\n".join("    " + line if line else line for line in text.splitlines())
