"""Each model-based or local searcher beats random search on a small synthetic problem.

The space has 2,560 points; the objective is a sum of fixed per-decision worths
(objectives.additive). Figure of merit: the median over 10 seeds of the best score after 60 asks.
"""

from __future__ import annotations

import statistics

import pytest

import archc
from archc.search import SEARCHERS

from .objectives import additive

SPEC = """
space quality {
    input x: float[16]
    linear(choice(8, 16, 32, 64))
    mlp(ratio = int(1..4), activation = choice("gelu", "swiglu"))
    one_of ffn {
        mlp(ratio = choice(2, 4))
        moe(experts = choice(4, 8))
    }
    optional { linear(choice(8, 16, 32, 64)) }
    linear(choice(8, 16, 32, 64))
}
"""

ASKS, SEEDS = 60, 10


def median_best(name: str) -> float:
    space = archc.loads(SPEC)
    bests = []
    for seed in range(SEEDS):
        searcher = SEARCHERS[name](space, seed=seed)
        for _ in range(ASKS):
            point = searcher.ask()
            searcher.tell(point, additive(point))
        bests.append(max(score for _, score in searcher.history))
    return statistics.median(bests)


@pytest.fixture(scope="module")
def baseline() -> float:
    return median_best("random")


def test_the_space_has_a_few_thousand_points() -> None:
    assert archc.loads(SPEC).size == 2560


@pytest.mark.parametrize("name", ["mcts", "evolution", "local", "smbo"])
def test_beats_random_search(name: str, baseline: float) -> None:
    assert median_best(name) > baseline
