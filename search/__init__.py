"""Searchers: base (the ask/tell/restore contract), random, mcts (UCT), evolution (regularized),
local (local search), smbo (Gaussian-process or ridge surrogate), encode (discretising
decisions for them), _optuna (the one seam to optuna: TPE, NSGA-II, define-by-run suggestions).
Studies: study (optuna storage, SQLite by default; trial records, history, reuse by hash).
Training: tasks (built-in tasks with fixed splits), trainer (train and evaluate a compiled point).

Only tasks and trainer import torch, and nothing here imports them: a search proposes points;
training them is the trainer's job.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archc.dsl.space import Space
from archc.search._optuna import NSGAII, TPE
from archc.search.base import BaseSearcher, Result, score_of
from archc.search.evolution import RegularizedEvolution
from archc.search.local import LocalSearch
from archc.search.mcts import MCTS
from archc.search.random import RandomSearch
from archc.search.smbo import SMBO

__all__ = ["BaseSearcher", "Result", "score_of", "SEARCHERS", "RandomSearch", "MCTS",
           "RegularizedEvolution", "LocalSearch", "SMBO", "TPE", "NSGAII"]

if TYPE_CHECKING:
    import optuna

SEARCHERS: dict[str, Callable[..., BaseSearcher]] = {
    "random": RandomSearch,
    "random_arch": partial(RandomSearch, uniform="arch"),
    "mcts": MCTS,
    "evolution": RegularizedEvolution,
    "local": LocalSearch,
    "smbo": SMBO,
    "tpe": TPE,
}
"""Searcher name (as `--searcher` and `search { searcher = … }` spell it) → a factory taking
`(space, seed=…)`; `random_arch` samples uniformly over architectures. NSGA-II takes
a tuple of scores (several objectives), so it is chosen by the multi-objective path instead."""


class _Search(types.ModuleType):
    """`archc.search` is this package AND the Python face of `archc search`: the package's name
    is taken by the subpackage (importing it replaces any attribute of that name on `archc`), so
    the module itself is made callable. `archc.search(spec, trials=20)` returns the study."""

    def __call__(self, spec: str | Path | Space, **options: Any) -> optuna.Study:
        """Search a spec (a path or a loaded Space) like `archc search`; options are those of
        `archc.search.runner.run_search` and `archc.search.plan.make_plan` (searcher, trials,
        task, data, objective, pruner, storage, study, seed, epochs, seconds, threads,
        on_trial)."""
        import archc
        from archc.search.runner import run_search
        if isinstance(spec, Space):
            return run_search(spec, **options)
        text = Path(spec).read_text(encoding="utf-8")
        return run_search(archc.load(spec), spec_text=text, spec_name=str(spec), **options)


sys.modules[__name__].__class__ = _Search
