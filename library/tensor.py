"""What a block's rules work with before any weight exists: tensor types and hyperparameters.

A `TensorType` is the per-example shape of a tensor (the batch axis is implicit) and its layout,
which says what the axes mean and so where features live:

| layout   | shape       | features | e.g.                         |
|----------|-------------|----------|------------------------------|
| `tokens` | (t,)        | —        | integer token ids            |
| `flat`   | (d,)        | axis 0   | after flatten or pooling     |
| `seq`    | (t, d)      | last     | after an embedding           |
| `cl`     | (c, l)      | axis 0   | 1-D signals (MNIST-1D)       |
| `chw`    | (c, h, w)   | axis 0   | images (digits, CIFAR)       |

Shape rules raise `ShapeError` with a message in the user's terms; the compiler adds the spec
location. Nothing here imports torch.

>>> x = TensorType((16, 8, 8), "chw")
>>> x.channels, x.numel, x.with_channels(32).shape
(16, 1024, (32, 8, 8))
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

__all__ = ["TensorType", "Hyperparams", "ShapeError", "LAYOUTS"]

LAYOUTS = {"tokens": 1, "flat": 1, "seq": 2, "cl": 2, "chw": 3}
"""Each layout and the rank of its per-example shape."""


class ShapeError(Exception):
    """A block cannot take a tensor of this type; the message says what it expects."""


@dataclass(frozen=True)
class TensorType:
    shape: tuple[int, ...]
    layout: str
    dtype: str = "float"

    def __str__(self) -> str:
        return f"{self.dtype}[{', '.join(map(str, self.shape))}] ({self.layout})"

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def feature_axis(self) -> int:
        """Per-example axis holding features: last for `seq`, first otherwise."""
        return len(self.shape) - 1 if self.layout == "seq" else 0

    @property
    def channels(self) -> int:
        """Features per position: d of (t, d), c of (c, l) and (c, h, w), d of (d,)."""
        return self.shape[self.feature_axis]

    @property
    def last(self) -> int:
        return self.shape[-1]

    @property
    def positions(self) -> int:
        """Positions sharing the same weights: t, l or h·w (1 for flat vectors)."""
        return self.numel // self.channels if self.layout != "tokens" else self.shape[0]

    def with_channels(self, channels: int) -> TensorType:
        shape = list(self.shape)
        shape[self.feature_axis] = channels
        return replace(self, shape=tuple(shape))

    def with_last(self, size: int) -> TensorType:
        return replace(self, shape=(*self.shape[:-1], size))

    def expect(self, *layouts: str, block: str) -> None:
        """Raise ShapeError unless this tensor has one of `layouts`."""
        if self.layout not in layouts or (self.dtype != "float" and "tokens" not in layouts):
            wanted = " or ".join(f"{lay} {_AXES[lay]}" for lay in layouts)
            raise ShapeError(f"{block} expects {wanted}, got {self}")


_AXES = {"tokens": "(t,)", "flat": "(d,)", "seq": "(t, d)", "cl": "(c, l)", "chw": "(c, h, w)"}


class Hyperparams(Mapping[str, Any]):
    """A block's resolved hyperparameters, read as attributes: `h.out`, `h.bias`."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = dict(values)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Hyperparams({self._values!r})"

    def __hash__(self) -> int:
        return hash(tuple(sorted((k, repr(v)) for k, v in self._values.items())))
