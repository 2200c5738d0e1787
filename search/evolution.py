"""Regularized (aging) evolution.

Source: Real, Aggarwal, Huang & Le, "Regularized Evolution for Image Classifier Architecture
Search", AAAI 2019; settings from NASLib / naszilla and research/searchers.md §1.5, §1.11 item 2.
Mutation is `space.mutate`: one active decision changes, whatever it activates is drawn fresh
(DeepArchitect's truncation rule for conditional spaces, generalised).
"""

from __future__ import annotations

from collections import deque

from archc.dsl.point import Point
from archc.dsl.space import Space
from archc.search.base import BaseSearcher

__all__ = ["RegularizedEvolution"]


class RegularizedEvolution(BaseSearcher):
    """A FIFO population of the last `population` told points. Until it is full, asks are
    random samples; then each ask draws `sample` members (with replacement, as NATS-Bench
    does) and mutates the best. A tell appends and the oldest member leaves: age, not
    fitness, decides who dies, which keeps the search from clinging to a lucky early point.

    Defaults P=20, S=5 suit budgets of about 100 evaluations (searchers.md §1.5, §1.11)."""

    def __init__(self, space: Space, *, seed: int = 0, population: int = 20,
                 sample: int = 5) -> None:
        if population < 1 or sample < 1:
            raise ValueError("population and sample must be at least 1")
        self.population_size = population
        self.sample_size = sample
        super().__init__(space, seed=seed)

    def _reset(self) -> None:
        self.population: deque[tuple[Point, float]] = deque(maxlen=self.population_size)

    def _propose(self) -> Point:
        if len(self.population) < self.population_size:
            return self.space.sample(self.rng)
        contenders = [self.rng.choice(self.population) for _ in range(self.sample_size)]
        parent = max(contenders, key=lambda member: member[1])[0]
        return self.space.mutate(parent, self.rng)

    def _observe(self, point: Point, score: float) -> None:
        self.population.append((point, score))
