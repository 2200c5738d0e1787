"""Decisions as numbers: positions in a range, bins of a large or continuous domain.

MCTS needs a small set of children per decision and SMBO needs numeric features; both come from
here so that a float or a wide int range is discretised one documented way: its range (in log
space for `log` floats) is cut into `BINS` equal bins.
"""

from __future__ import annotations

import math
import random

from archc.dsl.domain import Domain, FloatRange, IntRange, Scalar

__all__ = ["BINS", "position", "arity", "bin_of", "draw_in_bin"]

BINS = 4
"""Bins of a float range, and the most children a wide int range gets (as bins of its values)."""

MAX_CHILDREN = 8
"""A discrete domain with at most this many values gets one child per value."""


def position(domain: Domain, value: Scalar) -> float:
    """Where a numeric value lies in its range, in [0, 1] (log scale for `log` floats)."""
    if isinstance(domain, FloatRange):
        low, high, x = domain.low, domain.high, float(value)
        if domain.log:
            low, high, x = math.log(low), math.log(high), math.log(x)
        return 0.0 if high == low else (x - low) / (high - low)
    if isinstance(domain, IntRange):
        steps = (int(value) - domain.low) // domain.step
        return 0.0 if domain.size == 1 else steps / (domain.size - 1)
    raise TypeError(f"{domain.describe()} is not a numeric range")


def arity(domain: Domain) -> int:
    """Number of children a decision over `domain` has in a search tree."""
    if not domain.discrete:
        return BINS
    return domain.size if domain.size <= MAX_CHILDREN else MAX_CHILDREN


def bin_of(domain: Domain, value: Scalar) -> int:
    """The child (0 … arity-1) that `value` falls into."""
    if not domain.discrete:
        return min(int(position(domain, value) * BINS), BINS - 1)
    index = domain.values().index(value)
    return index if domain.size <= MAX_CHILDREN else index * MAX_CHILDREN // domain.size


def draw_in_bin(domain: Domain, child: int, rng: random.Random) -> Scalar:
    """A value of child `child`: the value itself, or a uniform draw inside the bin."""
    if not domain.discrete:
        lo, hi = child / BINS, (child + 1) / BINS
        assert isinstance(domain, FloatRange)
        if domain.log:
            a, b = math.log(domain.low), math.log(domain.high)
            value = math.exp(a + (b - a) * rng.uniform(lo, hi))
        else:
            value = domain.low + (domain.high - domain.low) * rng.uniform(lo, hi)
        return min(max(value, domain.low), domain.high)
    values = domain.values()
    if domain.size <= MAX_CHILDREN:
        return values[child]
    first = -(-child * domain.size // MAX_CHILDREN)
    last = -(-(child + 1) * domain.size // MAX_CHILDREN)
    return values[rng.randrange(first, last)]
