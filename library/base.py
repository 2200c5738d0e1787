"""The block decorator: one class per block declares its hyperparameters (and, in later layers,
its shape rule, parameter count and `build`).

Declaring a block must not import torch: `archc check` reads the signatures and must start fast.
Implementations import torch inside the functions that need it.

A block-typed hyperparameter takes a block in a spec (`moe(expert = mlp(ratio = 2))`); `kind`
says which kind (`layer`, or `mix` for hyper-connection mixes). Its default, if any, is the NAME
of a registered block of that kind, used with all of its own defaults:
`hp("block", "mlp", kind="layer")`, `hp("block", "hc", kind="mix")`. So every hyperparameter of
a block named as a default must itself have a default (tests/library checks both).

>>> @block("scale", registry={})
... class Scale:
...     '''Multiply by a constant.'''
...     factor = hp("float", 1.0, doc="the constant")
>>> Scale.signature.param("factor").default
1.0
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from archc.dsl.signature import REQUIRED, Hyper, Signature

__all__ = ["hp", "block", "BLOCKS", "IMPLEMENTATIONS", "implementation", "rules",
           "ParameterFree"]

T = TypeVar("T")

BLOCKS: dict[str, Signature] = {}
"""Every signature declared with `@block`, by name; `archc.library.REGISTRY` wraps it."""

IMPLEMENTATIONS: dict[str, Any] = {}
"""The class declared for each block. A block is implemented when its class defines the four
rules, each a static method taking the resolved `Hyperparams` `h` and the input `TensorType`
`x` (a body block's rules are the compiler's business):

    shape(h, x) -> TensorType   the output type, or ShapeError
    params(h, x) -> int         the exact parameter count
    flops(h, x) -> int          multiply-adds × 2 per example, counted as torch's flop counter
                                counts them (matmuls, convolutions, attention; not pointwise ops)
    build(h, x) -> nn.Module    the module (torch is imported inside)
"""

RULES = ("shape", "params", "flops", "build")


class ParameterFree:
    """The `params` and `flops` rules of a block with no weights whose work torch's flop
    counter does not count (pooling, activations, norms without affine maps…): both zero."""

    @staticmethod
    def params(h: Any, x: Any) -> int:
        return 0

    @staticmethod
    def flops(h: Any, x: Any) -> int:
        return 0


def rules(name: str) -> Any:
    """The class of an implemented block; LookupError (a bug: decode refuses blocks without
    rules, located at the spec) otherwise."""
    cls = implementation(name)
    if cls is None:
        raise LookupError(f"block {name!r} has no rules")
    return cls


def implementation(name: str) -> Any | None:
    """The class of block `name` if it defines every rule, else None (declared only)."""
    cls = IMPLEMENTATIONS.get(name)
    return cls if cls is not None and all(hasattr(cls, r) for r in RULES) else None


def hp(type: str, default: object = REQUIRED, *, doc: str = "", low: float | None = None,
       high: float | None = None, options: tuple[str, ...] = (), kind: str = "layer",
       positive: bool = False) -> Hyper:
    """A hyperparameter declaration; its name is the class attribute it is assigned to."""
    return Hyper("", type, default, doc, low, high, tuple(options), kind, positive)


def block(name: str, *, kind: str = "layer", body: bool = False, inputs: int = 1,
          cite: str = "", registry: dict[str, Signature] | None = None) -> Callable[[T], T]:
    """Register the decorated class as block `name`; its `hp(...)` attributes, in order, are
    the hyperparameters (positional arguments in a spec follow this order); its docstring is the
    doc."""

    def register(cls: Any) -> Any:
        params = tuple(
            Hyper(attr, *(getattr(value, f) for f in _HYPER_FIELDS))
            for attr, value in vars(cls).items() if isinstance(value, Hyper)
        )
        doc = " ".join((cls.__doc__ or "").split())
        cls.signature = Signature(name, params, doc, kind, body, inputs, cite)
        table = BLOCKS if registry is None else registry
        if name in table:
            raise ValueError(f"block {name!r} is declared twice")
        table[name] = cls.signature
        if registry is None:
            IMPLEMENTATIONS[name] = cls
        return cls

    return register


_HYPER_FIELDS = ("type", "default", "doc", "low", "high", "options", "kind", "positive")
