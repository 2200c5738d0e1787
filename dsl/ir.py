"""The checked program of a space: frozen nodes with resolved names and decision paths.

The checker turns the AST into these nodes. Two kinds live here:

* values — constants, arithmetic, task constants, block values with their hyperparameters, and
  the decision sites `Decide` (one value from a domain) and `Switch` (one of several values);
* steps — what the network does: apply a block, bind a named tensor, choose between statement
  alternatives (`Choose`), `Maybe` a body, `Repeat` a body, `Require` a condition.

Every decision site carries a path *template*: `layers[*].mlp.ratio` is the decision `ratio` of
the `mlp` inside copy `*` of repeat `layers`; the walk fills `[*]` with copy indices (walk.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from archc.dsl.domain import Domain, Scalar
from archc.errors import Span

__all__ = [
    "Value", "Const", "Ref", "TaskConst", "Op", "Decide", "Switch", "Block", "DefBlock",
    "Flow", "FlowRef", "Merge", "Applied", "Step", "Seq", "InputDecl", "Let", "Apply", "Bind",
    "Return", "Choose", "Maybe", "Repeat", "Require", "Inline", "SITES",
]

@dataclass(frozen=True)
class Node:
    span: Span | None = field(default=None, compare=False, repr=False, kw_only=True)


# ── values ───────────────────────────────────────────────────────────────────────────────────


class Value(Node):
    """Something a hyperparameter, a `let` or a condition may hold."""


@dataclass(frozen=True)
class Const(Value):
    value: Scalar


@dataclass(frozen=True)
class Ref(Value):
    """The value of the decision (or `let`) declared at `path`."""

    path: str


@dataclass(frozen=True)
class TaskConst(Value):
    """`task.classes` and friends: known only when a task is chosen."""

    name: str


@dataclass(frozen=True)
class Op(Value):
    """Arithmetic, comparison or logic: `op` is a Python-style operator (`+`, `//`, `and`, …)."""

    op: str
    args: tuple[Value, ...]


@dataclass(frozen=True)
class Decide(Value):
    """A decision: one value from `domain`."""

    path: str
    domain: Domain


@dataclass(frozen=True)
class Switch(Value):
    """`one_of(…)` as a value: a decision whose value is the key of the chosen option."""

    path: str
    options: tuple[tuple[str, Value], ...]


@dataclass(frozen=True)
class Block(Value):
    """A library block with every hyperparameter resolved (defaults filled in)."""

    name: str
    args: tuple[tuple[str, Value], ...]
    body: Seq | None = None


@dataclass(frozen=True)
class DefBlock(Value):
    """A `def` sub-space used as a block: its body runs on the tensors it is applied to."""

    name: str
    inputs: tuple[str, ...]
    body: Seq


# ── tensor flows (DAG cells) ─────────────────────────────────────────────────────────────────


class Flow(Node):
    """An expression whose value is a tensor."""


@dataclass(frozen=True)
class FlowRef(Flow):
    name: str


@dataclass(frozen=True)
class Merge(Flow):
    """`a + b` (sum) or `concat(a, b)` (along features) of tensors."""

    kind: str
    items: tuple[Flow, ...]


@dataclass(frozen=True)
class Applied(Flow):
    """A block value applied to tensors: `op(c)(x)`."""

    block: Value
    inputs: tuple[Flow, ...]
    path: str = ""


# ── steps ────────────────────────────────────────────────────────────────────────────────────


class Step(Node):
    """One statement of a body."""


@dataclass(frozen=True)
class Seq(Node):
    steps: tuple[Step, ...]


@dataclass(frozen=True)
class InputDecl(Step):
    name: str
    dtype: str
    dims: tuple[Value | str, ...] | None


@dataclass(frozen=True)
class Let(Step):
    """`let name = value`: the value's decisions are made here, once, for every use."""

    path: str
    value: Value


@dataclass(frozen=True)
class Apply(Step):
    """Apply a block value to the current tensor (sequential style)."""

    path: str
    block: Value


@dataclass(frozen=True)
class Bind(Step):
    """`name = flow`: name a tensor (DAG style); it also becomes the current tensor."""

    name: str
    flow: Flow


@dataclass(frozen=True)
class Return(Step):
    flow: Flow


@dataclass(frozen=True)
class Choose(Step):
    """`one_of { … }` of statements: a decision whose value is the chosen alternative's key."""

    path: str
    options: tuple[tuple[str, Seq], ...]


@dataclass(frozen=True)
class Maybe(Step):
    """`optional { … }`: a boolean decision; the body exists only when it is true."""

    path: str
    body: Seq


@dataclass(frozen=True)
class Repeat(Step):
    """`repeat name in count { … }`. `count` is a `Const` or a `Decide` at `path`. Unshared
    copies have their own decisions (body paths hold `[*]`); `share = "arch"` ties the copies'
    decisions, `share = "weights"` also their weights (body paths without `[*]`)."""

    path: str
    count: Value
    body: Seq
    share: str = "none"


@dataclass(frozen=True)
class Require(Step):
    """A constraint. `deferred` ones name compiled properties (params, flops, …) and are
    checked by the compiler, after lowering and before training."""

    cond: Value
    text: str
    deferred: bool = False


@dataclass(frozen=True)
class Inline(Step):
    """A `def` body expanded in place, with its own naming scope at `path`."""

    name: str
    path: str
    body: Seq


SITES = (Decide, Switch, Choose, Maybe)
"""Node types that are decisions themselves (a `Repeat` decides through its `count`)."""
