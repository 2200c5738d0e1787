"""Monte-Carlo tree search (UCT) over the space's sequential decisions.

Source: DeepArchitect's MCTS searcher (negrinho/deep_architect, searchers/mcts.py; Negrinho &
Gordon 2017, arXiv 1704.08792), as summarised in research/searchers.md §1.2 and §1.11 item 6,
with two documented changes:

* Rewards are rank-normalised: a trial's reward is its rank among all told scores, scaled to
  [0, 1] (failures rank lowest). Raw scores would tie the exploration constant to the scale of
  the objective; ranks make `c` mean the same thing for any objective.
* Floats and wide int ranges are discretised (archc.search.encode): a child is a bin, and the
  value is drawn uniformly inside the bin.
* A walk that ends at a point already told is replaced by an unseen one-decision mutation of
  it (up to `RETRIES` tries). Once the tree reaches full depth along its best path, UCT would
  otherwise re-propose that leaf until exploration bonuses build up, and a repeat teaches
  nothing: with budgets counted in distinct points, the walk's neighbourhood is the useful ask.

A tree node is the tuple of (path, child) decisions from the root, in the order
`space.next_decision` asks them; the tree grows by one node per tell (DeepArchitect's one level
per evaluation), so the tree is a function of the tells alone.
"""

from __future__ import annotations

import math

from archc.dsl.point import Point
from archc.dsl.space import Space
from archc.errors import SpaceError
from archc.search.base import BaseSearcher
from archc.search.encode import arity, bin_of, draw_in_bin

__all__ = ["MCTS"]

Node = tuple[tuple[str, int], ...]

RETRIES = 10
"""Mutations tried when a walk ends at a point already told."""


class MCTS(BaseSearcher):
    """UCT: at an expanded node choose the child maximising
    `mean_rank + c * sqrt(2 ln N_parent / n_child)`; unvisited children first, at random;
    below the tree, decisions are drawn uniformly (the rollout).

    DeepArchitect's 2017 experiments used `c = 0.5` (its framework default is 1.0). Here the
    default is `c = 0.1`, measured on NAS-Bench-201 (benchmarks/results/searchers.md: regret at
    100 cells 0.25 with c = 0.5, 0.11 with c = 0.1, 0.09 with c = 0.05, 0.48 with c = 1): with
    rank rewards in [0, 1] and repeats turned into mutations, little exploration pays at the
    budgets of a real search (25 to 200 trials)."""

    def __init__(self, space: Space, *, seed: int = 0, c: float = 0.1) -> None:
        self.c = c
        super().__init__(space, seed=seed)

    def _reset(self) -> None:
        self.visits: dict[Node, list[int]] = {(): []}  # node → indices of the trials through it
        self.scores: list[float] = []

    def _propose(self) -> Point:
        ranks = self._ranks()
        partial: dict = {}
        node: Node = ()
        while node in self.visits:
            site = self.space.next_decision(partial)
            if site is None:
                break
            child = self._select(node, site.path, arity(site.domain), ranks)
            partial[site.path] = draw_in_bin(site.domain, child, self.rng)
            node = (*node, (site.path, child))
        try:
            point = self.space.complete(partial, self.rng)
        except SpaceError:  # the tree path violates a `require`: fall back to a fresh sample
            point = self.space.sample(self.rng)
        return self._unseen(point, lambda told: self.space.mutate(told, self.rng), RETRIES)

    def _select(self, node: Node, path: str, n: int, ranks: list[float]) -> int:
        total = len(self.visits[node])
        best: list[int] = []
        best_value = -math.inf
        for child in range(n):
            trials = self.visits.get((*node, (path, child)))
            if not trials:
                value = math.inf
            else:
                mean = sum(ranks[i] for i in trials) / len(trials)
                value = mean + self.c * math.sqrt(2 * math.log(max(total, 1)) / len(trials))
            if value > best_value:
                best, best_value = [child], value
            elif value == best_value:
                best.append(child)
        return self.rng.choice(best)

    def _ranks(self) -> list[float]:
        """Each trial's rank among all scores, in [0, 1]; ties share their mean rank."""
        n = len(self.scores)
        order = sorted(range(n), key=self.scores.__getitem__)
        ranks = [0.0] * n
        i = 0
        while i < n:
            j = i
            while j + 1 < n and self.scores[order[j + 1]] == self.scores[order[i]]:
                j += 1
            for k in range(i, j + 1):
                ranks[order[k]] = (i + j) / 2 / max(n - 1, 1)
            i = j + 1
        return ranks

    def _observe(self, point: Point, score: float) -> None:
        index = len(self.scores)
        self.scores.append(score)
        node: Node = ()
        self.visits[node].append(index)
        for site in self.space.trace(point).sites:
            node = (*node, (site.path, bin_of(site.domain, point[site.path])))
            if node not in self.visits:
                self.visits[node] = [index]  # expand: one new node per tell
                return
            self.visits[node].append(index)
