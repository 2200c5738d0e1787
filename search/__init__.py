"""Searchers: base (the ask/tell/restore contract), random, mcts (UCT), evolution (regularized),
local (local search), smbo (ridge surrogate), encode (discretising decisions for them).

None of them imports torch: a search proposes points; training them is another layer's job.
"""

from __future__ import annotations

from archc.search.base import BaseSearcher, Result, score_of
from archc.search.evolution import RegularizedEvolution
from archc.search.local import LocalSearch
from archc.search.mcts import MCTS
from archc.search.random import RandomSearch
from archc.search.smbo import SMBO

__all__ = ["BaseSearcher", "Result", "score_of", "SEARCHERS", "RandomSearch", "MCTS",
           "RegularizedEvolution", "LocalSearch", "SMBO"]

SEARCHERS: dict[str, type[BaseSearcher]] = {
    "random": RandomSearch,
    "mcts": MCTS,
    "evolution": RegularizedEvolution,
    "local": LocalSearch,
    "smbo": SMBO,
}
"""Searcher name (as `--searcher` and `search { searcher = … }` spell it) → class."""
