"""Block signatures: what the checker knows about a block without importing torch.

A `Signature` is a block's name, its hyperparameters (`Hyper`: type, domain, default, doc) and how
it is used in a spec (a layer applied to tensors, a hyper-connection `mix`, a block with a `{ }`
body). The checker resolves names against a `Registry` of signatures that is passed in, so the
language never depends on which blocks exist; `archc.library.REGISTRY` is the standard one.

>>> ratio = Hyper("ratio", "int", default=4, low=1, doc="hidden width over input width")
>>> ratio.problem(0)
'must be >= 1'
>>> Signature("mlp", (ratio,), doc="Two linear layers with an activation.").param("ratio").default
4
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

__all__ = ["REQUIRED", "Hyper", "Signature", "Registry", "TYPES"]

TYPES = ("int", "float", "bool", "str", "block")


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED = _Required()
"""The default of a hyperparameter that every use must give."""


@dataclass(frozen=True)
class Hyper:
    """One hyperparameter: `type` is int, float, bool, str or block; the domain is [low, high]
    for numbers (inclusive; None is unbounded), `options` for strings, and `kind` for blocks
    (the kind of block it takes, e.g. `layer` or `mix`)."""

    name: str
    type: str
    default: object = REQUIRED
    doc: str = ""
    low: float | None = None
    high: float | None = None
    options: tuple[str, ...] = ()
    kind: str = "layer"
    positive: bool = False  # strictly greater than `low`

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def problem(self, value: object) -> str | None:
        """Why a constant `value` is outside this hyperparameter's domain, or None if it fits."""
        if self.type == "block":
            return None  # block values are checked by kind where they are resolved
        if self.type == "bool":
            if isinstance(value, bool):
                return None
            return f"must be true or false, not {_show(value)}"
        if self.type == "str":
            if not isinstance(value, str):
                return f"must be a string, not {_show(value)}"
            if self.options and value not in self.options:
                return f"must be one of {', '.join(map(repr, self.options))}"
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"must be a number, not {_show(value)}"
        if self.type == "int" and not isinstance(value, int):
            return f"must be an integer, not {_show(value)}"
        if self.low is not None and (value <= self.low if self.positive else value < self.low):
            return f"must be {'>' if self.positive else '>='} {_num(self.low)}"
        if self.high is not None and value > self.high:
            return f"must be <= {_num(self.high)}"
        return None

    def describe(self) -> str:
        """The domain in words, as `archc blocks` shows it."""
        if self.type == "str" and self.options:
            return " | ".join(self.options)
        if self.type == "block":
            return f"block ({self.kind})"
        if self.type in ("int", "float") and (self.low is not None or self.high is not None):
            low = "" if self.low is None else _num(self.low)
            high = "" if self.high is None else _num(self.high)
            return f"{self.type} {'(' if self.positive else '['}{low}..{high}]"
        return self.type


@dataclass(frozen=True)
class Signature:
    """What a spec may write for one block.

    `kind` says where the block may stand: `layer` blocks are applied to a tensor, `mix` blocks are
    hyper-connection mixes given to `hyper(mix = …)`. `body` is True for blocks that wrap a
    `{ … }` body (`hyper`, `loop`). `inputs` is the number of tensors a layer takes.
    """

    name: str
    params: tuple[Hyper, ...] = ()
    doc: str = ""
    kind: str = "layer"
    body: bool = False
    inputs: int = 1
    cite: str = ""

    def param(self, name: str) -> Hyper | None:
        return next((p for p in self.params if p.name == name), None)


class Registry(Mapping[str, Signature]):
    """An immutable name → Signature table with did-you-mean lookups."""

    def __init__(self, signatures: Mapping[str, Signature] | None = None) -> None:
        self._table: dict[str, Signature] = dict(signatures or {})

    def __getitem__(self, name: str) -> Signature:
        return self._table[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._table)

    def __len__(self) -> int:
        return len(self._table)

    def with_(self, *signatures: Signature) -> Registry:
        """A new registry with `signatures` added (a later one replaces a same-named one)."""
        return Registry({**self._table, **{s.name: s for s in signatures}})


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


def _show(value: object) -> str:
    return f"'{value}'" if isinstance(value, str) else str(value).lower() if isinstance(
        value, bool) else str(value)
