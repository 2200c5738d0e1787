"""Searchers: base (the ask/tell/restore contract), random, mcts (UCT), evolution (regularized),
local (local search), smbo (ridge surrogate), encode (discretising decisions for them),
_optuna (the one seam to optuna: TPE, NSGA-II, define-by-run suggestions).
Studies: study (optuna storage, SQLite by default; trial records, history, reuse by hash).
Training: tasks (built-in tasks with fixed splits), trainer (train and evaluate a compiled point).

Only tasks and trainer import torch, and nothing here imports them: a search proposes points;
training them is the trainer's job.
"""

from __future__ import annotations

from archc.search._optuna import NSGAII, TPE
from archc.search.base import BaseSearcher, Result, score_of
from archc.search.evolution import RegularizedEvolution
from archc.search.local import LocalSearch
from archc.search.mcts import MCTS
from archc.search.random import RandomSearch
from archc.search.smbo import SMBO

__all__ = ["BaseSearcher", "Result", "score_of", "SEARCHERS", "RandomSearch", "MCTS",
           "RegularizedEvolution", "LocalSearch", "SMBO", "TPE", "NSGAII"]

SEARCHERS: dict[str, type[BaseSearcher]] = {
    "random": RandomSearch,
    "mcts": MCTS,
    "evolution": RegularizedEvolution,
    "local": LocalSearch,
    "smbo": SMBO,
    "tpe": TPE,
}
"""Searcher name (as `--searcher` and `search { searcher = … }` spell it) → class. NSGA-II takes
a tuple of scores (several objectives), so it is chosen by the multi-objective path instead."""
