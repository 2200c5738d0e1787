"""Domains: the set of values one decision may take.

`choice(…)`, `int(a..b[, step])`, `float(a..b[, log])` and `bool` in a spec become `Choice`,
`IntRange`, `FloatRange` and `Flag`. A domain is plain data; sampling takes an explicit
`random.Random`, never a global generator.

>>> tuple(IntRange(2, 8, 2).values())
(2, 4, 6, 8)
>>> FloatRange(1e-4, 1e-2, log=True).contains(1e-3)
True
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Scalar", "Domain", "Choice", "IntRange", "FloatRange", "Flag", "scalar_type"]

Scalar = int | float | str | bool


def scalar_type(value: Scalar) -> str:
    """`int`, `float`, `bool` or `str`: the language's name for a constant's type."""
    return "bool" if isinstance(value, bool) else type(value).__name__


class Domain:
    """The values a decision may take. `size` counts them (a float range counts as one: it is
    continuous, and sizes are counted up to continuous decisions)."""

    discrete = True
    type = "int"

    @property
    def size(self) -> int:
        return len(self.values())

    def values(self) -> Sequence[Scalar]:
        raise NotImplementedError

    def contains(self, value: object) -> bool:
        return any(_same(value, v) for v in self.values())

    def sample(self, rng: random.Random) -> Scalar:
        return rng.choice(self.values())

    def describe(self) -> str:
        raise NotImplementedError


def _same(a: object, b: object) -> bool:
    """Equal and of the same kind: `True` is not `1`, but `2.0` is `2` for numbers."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return (type(a) is type(b) and a == b) or (
        isinstance(a, (int, float)) and isinstance(b, (int, float)) and a == b)


@dataclass(frozen=True)
class Choice(Domain):
    """`choice(v1, v2, …)`: one of the listed constants (all numbers, all strings or all bools)."""

    options: tuple[Scalar, ...]

    def values(self) -> tuple[Scalar, ...]:
        return self.options

    @property
    def type(self) -> str:  # type: ignore[override]
        kinds = {scalar_type(v) for v in self.options}
        return "float" if kinds == {"int", "float"} else kinds.pop()

    def describe(self) -> str:
        return f"choice({', '.join(_lit(v) for v in self.options)})"


@dataclass(frozen=True)
class IntRange(Domain):
    """`int(low..high)` with both ends included, optionally every `step`."""

    low: int
    high: int
    step: int = 1

    @property
    def size(self) -> int:
        return (self.high - self.low) // self.step + 1

    def values(self) -> range:
        """A lazy `range`: an int domain may hold 10^12 values."""
        return range(self.low, self.high + 1, self.step)

    def contains(self, value: object) -> bool:
        return (isinstance(value, int) and not isinstance(value, bool)
                and self.low <= value <= self.high and (value - self.low) % self.step == 0)

    def sample(self, rng: random.Random) -> int:
        return self.low + self.step * rng.randrange(self.size)

    def describe(self) -> str:
        step = f", step = {self.step}" if self.step != 1 else ""
        return f"int({self.low}..{self.high}{step})"


@dataclass(frozen=True)
class FloatRange(Domain):
    """`float(low..high)`, uniform; with `log`, uniform in log space (low must be > 0)."""

    low: float
    high: float
    log: bool = False
    discrete = False
    type = "float"

    @property
    def size(self) -> int:
        return 1

    def values(self) -> tuple[float, ...]:
        raise TypeError("a float range is continuous and has no list of values")

    def contains(self, value: object) -> bool:
        return (isinstance(value, (int, float)) and not isinstance(value, bool)
                and self.low <= value <= self.high)

    def sample(self, rng: random.Random) -> float:
        if self.log:
            return math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        return rng.uniform(self.low, self.high)

    def describe(self) -> str:
        return f"float({_lit(self.low)}..{_lit(self.high)}{', log' if self.log else ''})"


@dataclass(frozen=True)
class Flag(Domain):
    """`bool`: false or true."""

    type = "bool"

    def values(self) -> tuple[bool, ...]:
        return (False, True)

    def describe(self) -> str:
        return "bool"


def _lit(value: Scalar) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)
