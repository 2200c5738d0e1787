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

RETRIES = 10
"""Further mutations of the parent tried when a child was already told (tiny spaces repeat)."""


class RegularizedEvolution(BaseSearcher):
    """A FIFO population of the last `population` told points. Until it is full, asks are
    random samples; then each ask draws `sample` members (with replacement, as NATS-Bench
    does) and mutates the best. A tell appends and the oldest member leaves: age, not
    fitness, decides who dies, which keeps the search from clinging to a lucky early point.

    A child already told is mutated again (up to `RETRIES` times): a repeat would take a
    population slot and teach nothing.

    Defaults P=15, S=5, measured on NAS-Bench-201 for budgets of 25 to 200 evaluations
    (benchmarks/results/searchers.md; regret at 100 cells: P10/S3 0.28, P15/S5 0.09, P20/S5
    0.19, P30/S10 0.08, which is slower at 25 and 50); searchers.md §1.5 and §1.11 suggest
    P=10–20, S=3–5 up to about 100 evaluations."""

    def __init__(self, space: Space, *, seed: int = 0, population: int = 15,
                 sample: int = 5) -> None:
        if population < 1 or sample < 1:
            raise ValueError("population and sample must be at least 1")
        self.population_size = population
        self.sample_size = sample
        super().__init__(space, seed=seed)

    def _reset(self) -> None:
        self.population: deque[tuple[Point, float]] = deque(maxlen=self.population_size)
        self.seen: set[Point] = set()

    def _propose(self) -> Point:
        if len(self.population) < self.population_size:
            return self.space.sample(self.rng)
        contenders = [self.rng.choice(self.population) for _ in range(self.sample_size)]
        parent = max(contenders, key=lambda member: member[1])[0]
        child = self.space.mutate(parent, self.rng)
        for _ in range(RETRIES):  # a child already evaluated teaches nothing: mutate again
            if child not in self.seen:
                break
            child = self.space.mutate(parent, self.rng)
        return child

    def _observe(self, point: Point, score: float) -> None:
        self.population.append((point, score))
        self.seen.add(point)
