"""Lexical scopes and decision naming for the checker.

A `Scope` maps names to what they mean (a value, a tensor, a def parameter) and knows the path
prefix under which decisions declared in it are named. A `Naming` hands out unique segments in
one naming scope: the first `mlp` is `mlp`, the second `mlp#2`. Bodies of `one_of { }`,
`optional { }` and `hyper { }`-style blocks share their parent's naming, so wrapping a statement
in one of them keeps its decisions' paths; `repeat`, bindings and def calls start a fresh one.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from archc.dsl import ir
from archc.errors import Span

__all__ = ["Binding", "Naming", "Scope", "At", "join"]


def join(prefix: str, name: str) -> str:
    """`join("hyper", "mix") == "hyper.mix"`; an empty prefix adds nothing."""
    return f"{prefix}.{name}" if prefix else name


@dataclass
class Naming:
    """Unique path segments within one naming scope."""

    seen: Counter[str] = field(default_factory=Counter)

    def take(self, base: str) -> str:
        self.seen[base] += 1
        n = self.seen[base]
        return base if n == 1 else f"{base}#{n}"


@dataclass(frozen=True)
class Binding:
    """What a name means: `kind` is value, flow or def-param; `type` is the value's type
    (int, float, bool, str, block:<kind>, flow or any)."""

    kind: str
    value: ir.Value | None
    type: str
    span: Span | None


@dataclass
class Scope:
    """A lexical scope: names, the decision path prefix, and the naming it shares."""

    prefix: str
    naming: Naming
    parent: Scope | None = None
    names: dict[str, Binding] = field(default_factory=dict)
    flows: bool = False  # a current tensor exists (sequential steps are allowed)

    def lookup(self, name: str) -> Binding | None:
        scope: Scope | None = self
        while scope is not None:
            if name in scope.names:
                return scope.names[name]
            scope = scope.parent
        return None

    def visible(self) -> set[str]:
        out: set[str] = set()
        scope: Scope | None = self
        while scope is not None:
            out |= scope.names.keys()
            scope = scope.parent
        return out

    def child(self, prefix: str | None = None, naming: Naming | None = None) -> Scope:
        """A nested lexical scope; by default it shares this scope's prefix and naming."""
        return Scope(self.prefix if prefix is None else prefix, naming or self.naming, self,
                     flows=self.flows)


@dataclass
class At:
    """Where the decisions of one expression are named: the first inline domain takes `path`,
    a second one `path#2`, and so on."""

    path: str
    count: int = 0

    def take(self) -> str:
        self.count += 1
        return self.path if self.count == 1 else f"{self.path}#{self.count}"

    def sub(self, name: str) -> At:
        return At(join(self.path, name))
