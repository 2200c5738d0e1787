"""The syntax tree of a spec: frozen dataclasses named after the grammar's rules.

Every node has a `span` that equality ignores, so two parses of differently formatted text compare
equal (`parse(fmt(x)) == parse(x)`). Children are tuples; nothing here is ever mutated.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from archc.errors import Span

__all__ = [
    "Node", "Expr", "Name", "Number", "String", "Bool", "Quantity", "Binary", "Unary", "Call",
    "Attr", "OneOf", "Arg", "Stmt", "Input", "Let", "Require", "Return", "Bind", "Flow",
    "OneOfBlock", "Optional", "Repeat", "Group", "Body", "Param", "Def", "Space", "Field",
    "Fields", "Import", "Comment", "Module",
]


@dataclass(frozen=True)
class Node:
    span: Span | None = field(default=None, compare=False, repr=False, kw_only=True)


# ── expressions ──────────────────────────────────────────────────────────────────────────────


class Expr(Node):
    """Any expression: a value, a domain, a block, or a tensor flow; the checker decides which."""


@dataclass(frozen=True)
class Name(Expr):
    id: str


@dataclass(frozen=True)
class Number(Expr):
    value: int | float
    text: str = field(default="", compare=False)


@dataclass(frozen=True)
class String(Expr):
    value: str


@dataclass(frozen=True)
class Bool(Expr):
    value: bool


@dataclass(frozen=True)
class Quantity(Expr):
    """A number with a unit: `60s`, `5 epochs`. Seconds are normalised in `seconds`."""

    value: float
    unit: str


@dataclass(frozen=True)
class Binary(Expr):
    op: str  # + - * / // % ** == != < <= > >= and or
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Unary(Expr):
    op: str  # - not
    operand: Expr


@dataclass(frozen=True)
class Arg(Node):
    """A call argument: positional (`name` None), keyword, or a range `lo..hi`."""

    value: Expr
    name: str | None = None
    high: Expr | None = None  # set for a range argument: value..high


@dataclass(frozen=True)
class Call(Expr):
    func: Expr
    args: tuple[Arg, ...]


@dataclass(frozen=True)
class Attr(Expr):
    obj: Expr
    name: str


@dataclass(frozen=True)
class OneOf(Expr):
    """`one_of(a, b, label = c)`: alternatives, each optionally labelled."""

    args: tuple[Arg, ...]


# ── statements ───────────────────────────────────────────────────────────────────────────────


class Stmt(Node):
    """A statement of a body."""


@dataclass(frozen=True)
class Body(Node):
    stmts: tuple[Stmt, ...]


@dataclass(frozen=True)
class Input(Stmt):
    name: str
    dtype: str
    dims: tuple[Expr, ...] | None = None


@dataclass(frozen=True)
class Let(Stmt):
    name: str
    value: Expr


@dataclass(frozen=True)
class Require(Stmt):
    cond: Expr


@dataclass(frozen=True)
class Return(Stmt):
    value: Expr


@dataclass(frozen=True)
class Bind(Stmt):
    name: str
    value: Expr


@dataclass(frozen=True)
class Flow(Stmt):
    """A sequential step: a block (or def) applied to the current tensor, maybe with a body."""

    value: Expr
    body: Body | None = None


@dataclass(frozen=True)
class OneOfBlock(Stmt):
    label: str | None
    alternatives: Body


@dataclass(frozen=True)
class Optional(Stmt):
    label: str | None
    body: Body


@dataclass(frozen=True)
class Repeat(Stmt):
    name: str | None
    count: Expr
    share: str | None
    body: Body


@dataclass(frozen=True)
class Group(Stmt):
    """`{ a; b }` as one statement: a multi-step alternative of a `one_of { }`."""

    body: Body


# ── top level ────────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class Param(Node):
    name: str
    default: Expr | None = None


@dataclass(frozen=True)
class Def(Node):
    """`def f(params) = expr`, `def f(params) { body }` or a cell `def f(params)(inputs) { }`."""

    name: str
    params: tuple[Param, ...]
    inputs: tuple[Param, ...] | None
    value: Expr | Body


@dataclass(frozen=True)
class Space(Node):
    name: str
    body: Body


@dataclass(frozen=True)
class Field(Node):
    name: str
    values: tuple[Expr, ...]


@dataclass(frozen=True)
class Fields(Node):
    """A `train { }` or `search { }` block."""

    kind: str
    fields: tuple[Field, ...]


@dataclass(frozen=True)
class Import(Node):
    path: str


@dataclass(frozen=True)
class Comment:
    line: int
    column: int
    text: str


@dataclass(frozen=True)
class Module(Node):
    """A whole file. Comments are kept beside the tree (for `archc fmt`), not in it."""

    items: tuple[Import | Def | Space | Fields, ...]
    comments: tuple[Comment, ...] = field(default=(), compare=False, repr=False)
