"""Pruners: stop a weak trial early from its per-epoch reports (multi-fidelity search).

Training reports the objective after every epoch; the pruner compares it with what other
trials reported at the same epoch and may stop the trial (optuna's `TrialPruned`). A pruned
trial is recorded as PRUNED with the metrics of its last epoch, and its value is its last
reported objective (optuna's convention). Searchers are told that last value: it is a
low-fidelity score, biased low, which is the pruner's verdict anyway — evolution and MCTS
rank it among the weak, and TPE models it like any finished trial.

| name        | optuna pruner               | stops a trial when …                              |
|-------------|-----------------------------|---------------------------------------------------|
| `none`      | NopPruner                   | never                                             |
| `median`    | MedianPruner                | it is below the median of earlier trials at this   |
|             |                             | epoch (after 3 finished trials and 1 epoch)       |
| `halving`   | SuccessiveHalvingPruner     | it is not in the top third of its rung            |
| `hyperband` | HyperbandPruner             | successive halving over several brackets          |

Optuna prunes single-objective studies only, so a pruner other than `none` needs exactly one
objective, and that objective must be reported per epoch (a task metric, not a cost).
"""

from __future__ import annotations

from archc.dsl.fields import SEARCH_FIELDS
from archc.errors import ArchError, did_you_mean
from archc.search._optuna import optuna

__all__ = ["PRUNERS", "make_pruner"]

PRUNERS = SEARCH_FIELDS["pruner"].options
"""Pruner names as `--pruner` and `search { pruner = … }` spell them."""


def make_pruner(name: str, *, max_epochs: int = 10,
                flag: str = "--pruner") -> optuna.pruners.BasePruner:
    """The optuna pruner called `name`; `max_epochs` sizes Hyperband's brackets."""
    match name:
        case "none":
            return optuna.pruners.NopPruner()
        case "median":
            return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1)
        case "halving":
            return optuna.pruners.SuccessiveHalvingPruner(min_resource=1,
                                                          reduction_factor=3)
        case "hyperband":
            return optuna.pruners.HyperbandPruner(min_resource=1,
                                                  max_resource=max(1, max_epochs),
                                                  reduction_factor=3)
    raise ArchError(f"{flag}: unknown pruner '{name}'",
                    hint=did_you_mean(name, PRUNERS) or f"pruners: {', '.join(PRUNERS)}")
