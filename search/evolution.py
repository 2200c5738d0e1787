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

    Defaults P=20, S=10, measured on NAS-Bench-201 (oracle, mean regret over CIFAR-10,
    CIFAR-100 and ImageNet16-120, seeds 0-19, at 25/50/100/200 distinct cells: P20/S10
    1.85/0.83/0.27/0.05 points; P15/S5 2.01/1.17/0.60/0.16; P20/S5 2.22/1.24/0.66/0.20; P30/S10
    2.14/1.18/0.33/0.06; P15/S8 1.90/1.00/0.41/0.14). A tournament of half the population is
    strong selection; the aging still replaces the whole population every P tells.
    searchers.md §1.5 and §1.11 suggest P=10–20, S=3–5 up to about 100 evaluations; its own
    measurements favour P=20–30, S=5–10 beyond that."""

    def __init__(self, space: Space, *, seed: int = 0, population: int = 20,
                 sample: int = 10) -> None:
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
        return self._unseen(self.space.mutate(parent, self.rng),
                            lambda _: self.space.mutate(parent, self.rng), RETRIES)

    def _observe(self, point: Point, score: float) -> None:
        self.population.append((point, score))
