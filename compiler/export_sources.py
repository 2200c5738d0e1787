"""The names model.py needs, and where each comes from: imports, copies and literals.

model.py may import only torch and the standard library, so anything else it uses travels as
source. `Names.of(obj)` gives the name `obj` has in model.py and records what makes it exist:

- a module, class or function of torch or the standard library → an import line;
- a module of archc's that model.py cannot carry (the native kernels of `hyper_native`) → the
  source of the class it names `EXPORT_STAND_IN`, which answers its callers' questions so that
  they take their torch path;
- a builtin → nothing;
- any other class or function (archc's own module classes and helpers) → its source, copied
  with `inspect.getsource`, after everything its free names refer to (dependencies first);
- a literal, or a tuple/list/dict of such things (`_CONV = {1: nn.Conv1d}`) → an assignment.

A copied definition's free names are looked up in the module that defined it. Anything else
(numpy, a third-party helper, an object built at import time) cannot be written, and
`ExportError` names the definition and the name. Two different objects wanting one name get
`name_2`, and the copies that use them are rewritten to match.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import inspect
import json
import re
import sys
import textwrap
import types
from typing import Any

__all__ = ["ExportError", "Names", "free_names", "literal", "rename", "uses"]


class ExportError(RuntimeError):
    """A graph that model.py cannot express: a library class or function does not follow the
    export contract. This is archc's bug, not the user's, so it keeps its traceback."""


_LITERALS = (int, float, str, bool, bytes, type(None))


class Names:
    """The names bound in model.py: import lines, copied definitions (in dependency order)
    and the object each name stands for."""

    def __init__(self, reserved: dict[str, Any]) -> None:
        self.bound: dict[str, Any] = dict(reserved)  # name → object (or a marker)
        self.imports: set[str] = set()
        self.definitions: list[str] = []
        self._named: dict[int, str] = {}  # id(obj) → its name here

    def of(self, obj: Any, wanted: str, user: str = "the graph") -> str:
        """Source naming `obj` in model.py (a name, or a dotted path such as `F.relu`),
        preferably `wanted`; `user` says who needs it, for error messages."""
        if id(obj) in self._named:
            return self._named[id(obj)]
        if getattr(builtins, wanted, None) is obj and wanted not in self.bound:
            return wanted
        if isinstance(obj, types.ModuleType):
            stand_in = getattr(obj, "EXPORT_STAND_IN", None)
            if stand_in is not None and not _allowed(obj.__name__):
                return self.of(stand_in, wanted, user)
            return self._import_module(obj, wanted, user)
        if _is_literal(obj):
            return self._assign(obj, wanted, literal(obj))
        if isinstance(obj, (tuple, list, dict)):
            return self._assign(obj, wanted, self._container(obj, wanted, user))
        if callable(obj) and hasattr(obj, "__name__"):
            home = _public_module(obj)
            if home is None:
                return self._copy(obj, user)
            module, alias = home
            return f"{self._import_module(module, alias, user)}.{obj.__name__}"
        raise ExportError(f"{user} uses {wanted!r}, a {type(obj).__name__}, which model.py "
                          "cannot write: only torch, the standard library, literals, and "
                          "classes and functions whose source can be copied")

    def expression(self, value: Any, user: str) -> str:
        """Python source for `value`: a literal, a name, or a tuple/list/dict of those."""
        if _is_literal(value):
            return literal(value)
        if isinstance(value, tuple):
            items = [self.expression(v, user) for v in value]
            return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"
        if isinstance(value, list):
            return f"[{', '.join(self.expression(v, user) for v in value)}]"
        if isinstance(value, dict):
            pairs = (f"{self.expression(k, user)}: {self.expression(v, user)}"
                     for k, v in value.items())
            return f"{{{', '.join(pairs)}}}"
        return self.of(value, getattr(value, "__name__", "value"), user)

    def _container(self, value: tuple | list | dict, name: str, user: str) -> str:
        """A module-level container, one item per line if it is too long for one."""
        flat = self.expression(value, user)
        if len(name) + 3 + len(flat) <= 99 or not value:
            return flat
        if isinstance(value, dict):
            items = [f"{self.expression(k, user)}: {self.expression(v, user)}"
                     for k, v in value.items()]
        else:
            items = [self.expression(v, user) for v in value]
        brackets = {dict: "{}", list: "[]", tuple: "()"}[type(value)]
        return brackets[0] + "\n" + "".join(f"    {item},\n" for item in items) + brackets[1]

    # ── binding ──────────────────────────────────────────────────────────────────────────────

    def _bind(self, obj: Any, wanted: str) -> str:
        name, n = wanted, 1
        while name in self.bound and self.bound[name] is not obj:
            n += 1
            name = f"{wanted}_{n}"
        self.bound[name] = obj
        if not _is_literal(obj):  # equal literals may share an id but not a meaning
            self._named[id(obj)] = name
        return name

    def _import_module(self, module: types.ModuleType, wanted: str, user: str) -> str:
        full = module.__name__
        if not _allowed(full):
            raise ExportError(f"{user} uses the module {full!r} (as {wanted!r}); model.py "
                              "may import only torch and the standard library")
        if wanted == full and "." in full:  # `import torch.nn.modules.utils` binds `torch`
            root = full.split(".")[0]
            self._bind(importlib.import_module(root), root)
            self.imports.add(f"import {full}")
            return full
        name = self._bind(module, wanted)
        parent, _, last = full.rpartition(".")
        if name == full:
            self.imports.add(f"import {full}")
        elif name == last:
            self.imports.add(f"from {parent} import {last}")
        else:
            self.imports.add(f"import {full} as {name}")
        return name

    def _assign(self, value: Any, wanted: str, source: str) -> str:
        if wanted in self.bound and _same_literal(self.bound[wanted], value):
            return wanted
        name = self._bind(value, wanted)
        self.definitions.append(f"{name} = {source}")
        return name

    def _copy(self, obj: Any, user: str) -> str:
        """Copy the source of a class or function, after what its free names refer to."""
        what = f"{obj.__module__}.{obj.__qualname__}"
        try:
            source = textwrap.dedent(inspect.getsource(obj))
        except (OSError, TypeError) as err:
            raise ExportError(f"{user} uses {what}, whose source cannot be read ({err}); "
                              "model.py can only copy classes and functions from files") from None
        name = self._bind(obj, obj.__name__)
        defined_in = vars(sys.modules[obj.__module__])
        renames = {obj.__name__: name}
        for free in sorted(free_names(source) - {obj.__name__}):
            if free in defined_in:
                renames[free] = self.of(defined_in[free], free, what)
            elif not hasattr(builtins, free):
                raise ExportError(f"{what} uses {free!r}, which its module does not define")
        self.definitions.append(rename(source, renames).rstrip())
        return name


def free_names(source: str) -> set[str]:
    """Names the code reads but never binds, ignoring annotations (model.py postpones them with
    `from __future__ import annotations`). Any binding in the code counts, whatever its scope:
    a slight under-approximation that is safe because every name the code loads is checked by
    the rebuild in export_code."""
    finder = _NameFinder()
    finder.visit(ast.parse(source))
    return finder.loaded - finder.bound


class _NameFinder(ast.NodeVisitor):
    def __init__(self) -> None:
        self.loaded: set[str] = set()
        self.bound: set[str] = set()

    def visit_Name(self, node: ast.Name) -> None:
        (self.loaded if isinstance(node.ctx, ast.Load) else self.bound).add(node.id)

    def visit_arg(self, node: ast.arg) -> None:  # the annotation is skipped
        self.bound.add(node.arg)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.bound.add(node.name)
        for child in (*node.decorator_list, node.args, *node.body):  # not node.returns
            self.visit(child)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.bound.add(node.name)
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self.visit(node.target)
        if node.value is not None:
            self.visit(node.value)

    def visit_alias(self, node: ast.alias) -> None:
        self.bound.add((node.asname or node.name).split(".")[0])

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.name:
            self.bound.add(node.name)
        self.generic_visit(node)


def _allowed(module: str) -> bool:
    """Whether model.py may import `module`: torch or the standard library."""
    root = module.split(".")[0]
    return root == "torch" or root in sys.stdlib_module_names


_ALIASES = (("torch.nn.functional", "F"), ("torch.nn", "nn"), ("torch", "torch"))
"""How model.py spells torch's public modules, tried in this order (F.relu is not torch.relu)."""


def _public_module(obj: Any) -> tuple[types.ModuleType, str] | None:
    """An allowed module holding `obj` under its own name, and the name to import it as:
    `F` for torch.nn.functional, `math` for math; None if `obj` must be copied instead."""
    home = getattr(obj, "__module__", None) or ""
    candidates = (*_ALIASES, (home, home), (home.lstrip("_"), home.lstrip("_")))
    for module_name, alias in candidates:
        if not module_name or not _allowed(module_name):
            continue
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        if getattr(module, obj.__name__, None) is obj:
            return module, alias
    return None


def literal(value: Any) -> str:
    """Python source for a literal, strings in double quotes (JSON's escapes are Python's)."""
    return json.dumps(value, ensure_ascii=False) if isinstance(value, str) else repr(value)


def _is_literal(value: Any) -> bool:
    return isinstance(value, _LITERALS) and _round_trips(value)


def _round_trips(value: Any) -> bool:
    try:
        return bool(ast.literal_eval(repr(value)) == value)
    except (ValueError, SyntaxError):
        return False  # inf, nan


def _same_literal(a: Any, b: Any) -> bool:
    return _is_literal(a) and _is_literal(b) and type(a) is type(b) and a == b


def rename(source: str, renames: dict[str, str]) -> str:
    """Rewrite the names that are bound differently in model.py. Names only: an attribute
    (`x.name`) is left alone."""
    changed = {old: new for old, new in renames.items() if old != new}
    if not changed:
        return source
    return re.sub(_name_pattern(*changed), lambda m: changed[m.group(1)], source)


def uses(source: str, name: str) -> bool:
    """Whether `source` mentions `name` as a name (not as an attribute)."""
    return re.search(_name_pattern(name), source) is not None


def _name_pattern(*names: str) -> str:
    return r"(?<![\w.])(" + "|".join(map(re.escape, names)) + r")\b"
