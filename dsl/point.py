"""Point: one choice for every active decision of a space — an immutable path → JSON scalar map.

Points are plain data: they print, hash, compare and round-trip through JSON.

>>> p = Point({"d": 128, "hyper.mix": "mhc", "hyper.mix.mhc.iters": 7})
>>> Point.from_json(p.to_json()) == p
True
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping

from archc.dsl.domain import Scalar
from archc.errors import PointError

__all__ = ["Point"]


class Point(Mapping[str, Scalar]):
    """An immutable mapping from decision path to value (int, float, str or bool)."""

    __slots__ = ("_hash", "_items")

    def __init__(self, values: Mapping[str, Scalar] | None = None) -> None:
        self._items: dict[str, Scalar] = dict(values or {})
        self._hash: int | None = None

    def __getitem__(self, path: str) -> Scalar:
        return self._items[path]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(frozenset((k, (type(v).__name__, v))
                                        for k, v in self._items.items()))
        return self._hash

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Mapping):
            return NotImplemented
        return self._items == dict(other) and all(
            type(v) is type(other[k]) for k, v in self._items.items())

    def __repr__(self) -> str:
        return f"Point({self._items!r})"

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self._items, indent=indent)

    @classmethod
    def from_json(cls, text: str) -> Point:
        """Parse a JSON object of scalars; PointError if it is anything else."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise PointError(f"not JSON: {err.msg} at line {err.lineno} column {err.colno}"
                             ) from None
        if not isinstance(data, dict):
            raise PointError("a point is a JSON object of decision path → value")
        for key, value in data.items():
            if not isinstance(value, (int, float, str, bool)) or value is None:
                raise PointError(f"'{key}' holds {type(value).__name__}; a point holds "
                                 "numbers, strings and booleans")
        return cls(data)
