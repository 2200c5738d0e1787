"""Deterministic synthetic objectives for the search tests (no training, no torch)."""

from __future__ import annotations

import zlib
from collections.abc import Mapping

from archc.dsl.domain import Scalar
from archc.dsl.point import Point


def value_of(path: str, value: Scalar) -> float:
    """A fixed pseudo-random worth in [0, 1) of one decision's value (stable across runs)."""
    if isinstance(value, float):
        return value % 1.0
    return zlib.crc32(f"{path}={value!r}".encode()) % 1000 / 1000


def additive(point: Mapping[str, Scalar]) -> float:
    """The sum of per-decision worths: a separable landscape with one best point."""
    return sum(value_of(path, value) for path, value in point.items())


def noisy_result(point: Point, step: int) -> float | None:
    """`additive`, with failures sprinkled in: None every 5th step, NaN every 7th."""
    if step % 5 == 4:
        return None
    if step % 7 == 6:
        return float("nan")
    return additive(point)
