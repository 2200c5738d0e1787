"""AST → Space: resolve names against a block registry, check types and domains, name every
decision, and collect all errors of the pass before raising them together.

>>> from archc.dsl.parser import parse
>>> from archc.dsl.signature import Hyper, Registry, Signature
>>> reg = Registry({"linear": Signature("linear", (Hyper("out", "int", low=1),))})
>>> space = check(parse("space s {\\n input x: float[8]\\n linear(choice(16, 32))\\n}"), reg)
>>> space.size, [path for path, _ in space.decisions()]
(2, ['linear.out'])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from archc.dsl import ast, ir
from archc.dsl.check_statements import Statements
from archc.dsl.fields import SEARCH_FIELDS, TRAIN_FIELDS
from archc.dsl.parser import parse_file
from archc.dsl.satisfiable import check_satisfiable
from archc.dsl.scope import At, Naming, Scope
from archc.dsl.signature import Hyper, Registry
from archc.dsl.space import Space
from archc.errors import CheckError, Diagnostic, Span, did_you_mean

__all__ = ["check", "DefInfo"]


@dataclass(frozen=True)
class DefInfo:
    """A `def` and the file it came from (imported defs keep their own file's spans)."""

    node: ast.Def
    origin: str


def check(module: ast.Module, registry: Registry, *, base: Path | None = None) -> Space:
    """Check a parsed module against `registry` and build its Space.

    Passes, in order (each reports all of its errors before the next runs):
    1. `resolve_imports` — imported files exist, parse, and import no cycle;
    2. `collect` — one space, unique defs, at most one train and one search block;
    3. `Checker.space` — names, types, domains, arity; decisions named (this is the big one);
    4. `check_satisfiable` — some point satisfies every `require`.
    """
    imported = resolve_imports(module, base or Path("."), ())
    checker = Checker(registry)
    space_node, train, search = checker.collect(module, imported)
    checker.raise_errors()
    assert space_node is not None  # collect reported a missing space
    space = checker.space(space_node, train, search)
    checker.raise_errors()
    check_satisfiable(space)
    return space


def resolve_imports(module: ast.Module, base: Path, stack: tuple[Path, ...]
                    ) -> list[tuple[ast.Module, str]]:
    """Every module `module` imports, transitively, depth first; cycles and missing files are
    errors at the `import` that causes them."""
    out: list[tuple[ast.Module, str]] = []
    errors: list[Diagnostic] = []
    for item in module.items:
        if not isinstance(item, ast.Import):
            continue
        shown = base / item.path  # as the user would write it from here, for diagnostics
        path = shown.resolve()
        if path in stack:
            chain = " → ".join(p.name for p in (*stack[stack.index(path):], path))
            errors.append(Diagnostic(f"cyclic import: {chain}", item.span,
                                     "a file cannot import itself, directly or through others"))
            continue
        if not path.is_file():
            errors.append(Diagnostic(f"cannot import \"{item.path}\": no such file", item.span,
                                     f"paths are relative to {base}" if str(base) != "." else
                                     "paths are relative to the importing file"))
            continue
        sub = parse_file(shown)
        out += resolve_imports(sub, shown.parent, (*stack, path))
        out.append((sub, str(shown)))
    if errors:
        raise CheckError(errors)
    return out


@dataclass
class Checker(Statements):
    """Holds what one check needs: the registry, the defs, the diagnostics collected so far."""

    registry: Registry
    defs: dict = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    def_stack: list[str] = field(default_factory=list)

    def raise_errors(self) -> None:
        if self.diagnostics:
            found, self.diagnostics = self.diagnostics, []
            raise CheckError(_unique(found))

    def collect(self, module: ast.Module, imported: list[tuple[ast.Module, str]]
                ) -> tuple[ast.Space | None, ast.Fields | None, ast.Fields | None]:
        """Gather defs (imported first) and the one space, train and search block."""
        for sub, origin in imported:
            for item in sub.items:
                if isinstance(item, ast.Def):
                    self.add_def(item, origin)
        spaces = [i for i in module.items if isinstance(i, ast.Space)]
        blocks = {"train": [], "search": []}  # type: dict[str, list[ast.Fields]]
        for item in module.items:
            if isinstance(item, ast.Def):
                self.add_def(item, "")
            elif isinstance(item, ast.Fields):
                blocks[item.kind].append(item)
        if not spaces:
            self.error("no `space` in this file", module.span or None,
                       "a spec needs `space name { input x: float[…] … }`")
        for extra in spaces[1:]:
            self.error(f"a second space '{extra.name}': one space per file", extra.span,
                       "put shared parts in a `def` and each space in its own file")
        for kind, found in blocks.items():
            for dup in found[1:]:
                self.error(f"a second `{kind} {{ }}` block", dup.span, "merge them into one")
        return (spaces[0] if spaces else None, *(b[0] if b else None
                                                 for b in blocks.values()))  # type: ignore

    def add_def(self, node: ast.Def, origin: str) -> None:
        if node.name in self.defs:
            self.error(f"'{node.name}' is defined twice", node.span,
                       notes=(("first defined here", self.defs[node.name].node.span),))
        elif node.name in self.registry:
            self.error(f"def '{node.name}' has the name of a library block", node.span,
                       "choose another name")
        else:
            self.defs[node.name] = DefInfo(node, origin)

    def space(self, node: ast.Space, train: ast.Fields | None,
              search: ast.Fields | None) -> Space:
        scope = Scope("", Naming())
        body = self.body(node.body, scope, top=True)
        if not any(isinstance(s, ir.InputDecl) for s in body.steps):
            self.error(f"space '{node.name}' has no input", node.span,
                       "declare one, e.g. `input x: float[1, 8, 8]`")
        return Space(node.name, body, self.train(train, scope), self.search(search),
                     span=node.span)

    def train(self, node: ast.Fields | None, scope: Scope) -> ir.Seq:
        """`train { }` fields become `let`s at `train.<field>`; they may be decisions."""
        steps: list[ir.Step] = []
        for f in _unique_fields(self, node):
            hyper = TRAIN_FIELDS.get(f.name)
            if hyper is None:
                self.error(f"unknown train field '{f.name}'", f.span,
                           did_you_mean(f.name, TRAIN_FIELDS) or
                           f"train fields: {', '.join(TRAIN_FIELDS)}")
                continue
            if len(f.values) != 1:
                self.error(f"train field '{f.name}' takes one value", f.span)
                continue
            if self.unquoted(hyper, f.values[0], scope):
                continue
            value, vtype = self.value(f.values[0], scope, At(f"train.{f.name}"))
            self.fits_field(hyper, value, vtype, f.values[0].span)
            steps.append(ir.Let(f"train.{f.name}", value, span=f.span))
        return ir.Seq(tuple(steps), span=node.span if node else None)

    def search(self, node: ast.Fields | None) -> dict[str, object]:
        """`search { }` defaults: constants only (decisions belong in the space or train)."""
        out: dict[str, object] = {}
        for f in _unique_fields(self, node):
            if f.name not in SEARCH_FIELDS:
                self.error(f"unknown search field '{f.name}'", f.span,
                           did_you_mean(f.name, SEARCH_FIELDS) or
                           f"search fields: {', '.join(SEARCH_FIELDS)}")
                continue
            values = [self.search_value(f.name, v) for v in f.values]
            if f.name != "objective" and len(values) > 1:
                self.error(f"search field '{f.name}' takes one value", f.span)
                continue
            for value, e in zip(values, f.values, strict=True):
                problem = _search_problem(SEARCH_FIELDS[f.name], value)
                if problem:
                    self.error(f"search field '{f.name}' {problem}", e.span,
                               SEARCH_FIELDS[f.name].doc)
            out[f.name] = values if f.name == "objective" else values[0]
        return out


def _search_problem(hyper: Hyper, value: object) -> str | None:
    """Why a `search { }` value does not fit its field (None: it fits, or was reported)."""
    if value is None:
        return None
    if hyper.name in ("budget", "timeout"):
        fits = isinstance(value, dict) and (hyper.name == "budget" or "seconds" in value)
        return None if fits else "takes a quantity like `60s`" + (
            ", `5 epochs` or `200 steps`" if hyper.name == "budget" else " or `1h`")
    if hyper.name == "objective":
        return None if isinstance(value, dict) else \
            "takes `maximize(metric)` or `minimize(metric)`"
    return hyper.problem(value)


def _unique_fields(checker: Checker, node: ast.Fields | None) -> list[ast.Field]:
    seen: dict[str, Span | None] = {}
    out = []
    for f in node.fields if node else ():
        if f.name in seen:
            checker.error(f"field '{f.name}' is set twice", f.span,
                          notes=(("first set here", seen[f.name]),))
            continue
        seen[f.name] = f.span
        out.append(f)
    return out


def _unique(found: list[Diagnostic]) -> list[Diagnostic]:
    """Drop exact repeats (a def expanded twice reports its error once)."""
    out: list[Diagnostic] = []
    for d in found:
        if d not in out:
            out.append(d)
    return out

