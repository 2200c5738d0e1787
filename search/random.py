"""Random search: the baseline every other searcher must beat.

Source: DeepArchitect's `random_specify` (negrinho/deep_architect, searchers/common.py; see
research/searchers.md §1.1, §1.11 item 1). `uniform="decision"` draws each decision uniformly,
which favours shallow branches of the tree; `uniform="arch"` weighs each branch by the number of
points beneath it so that every architecture is equally likely.
"""

from __future__ import annotations

from archc.dsl.point import Point
from archc.dsl.space import Space
from archc.search.base import BaseSearcher

__all__ = ["RandomSearch"]


class RandomSearch(BaseSearcher):
    """Independent samples of the space; tells only feed `history`."""

    def __init__(self, space: Space, *, seed: int = 0, uniform: str = "decision") -> None:
        self.uniform = uniform
        super().__init__(space, seed=seed)

    def _reset(self) -> None:
        pass

    def _propose(self) -> Point:
        return self.space.sample(self.rng, uniform=self.uniform)

    def _observe(self, point: Point, score: float) -> None:
        pass
