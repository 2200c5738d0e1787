"""The one seam to optuna (STYLE.md §7): decisions as optuna params, and TPE / NSGA-II searchers.

Everything archc asks of optuna goes through this module, so an optuna upgrade touches one file.
A point's decision PATHS are the optuna param names, so a study opens in optuna-dashboard with
the decisions as its params. Spaces are conditional: `suggest_point` walks
`space.next_decision` define-by-run, so a branch's decisions are suggested only when the branch
is active, which is what TPE's `group=True` decomposition expects (searchers.md §1.6).

Restore guarantee (tested in tests/search/test_optuna.py): optuna's samplers keep a random
state that advances with every sample, so a searcher here builds a FRESH sampler at each ask,
seeded from (class, seed, number of asks so far), as `BaseSearcher` re-seeds its own RNG. TPE
is then a pure function of (space, seed, k, the finished trials), so `restore(history)` asks
exactly what a searcher that was told the same history live asks next, even one whose own asks
went untold (TPE runs without `constant_liar`, so running trials do not count), provided no
proposal was rejected by a `require` (those are failed trials a history does not carry; see
`OptunaSearcher._propose`).
NSGA-II keeps its generations in trial system attributes that a history does not carry, so
after `restore` it only guarantees valid, seeded proposals.
"""

from __future__ import annotations

import math
import warnings
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from typing import cast

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import TrialState

from archc.dsl.domain import Choice, Domain, Flag, FloatRange, IntRange, Scalar
from archc.dsl.point import Point
from archc.dsl.space import Space
from archc.search.base import WORST, BaseSearcher, score_of

__all__ = ["optuna", "TrialState", "quiet", "distribution", "distributions", "suggest_point",
           "running_trial", "OptunaSearcher", "TPE", "NSGAII", "MAX_REJECTS"]

MAX_REJECTS = 20
"""Proposals violating a `require` that are failed before falling back to a random point."""


def quiet() -> None:
    """Let optuna log warnings only, for the CLI's commands: their own output reports each
    trial, and optuna's INFO lines (one per trial, one per in-memory study a searcher opens)
    would drown it. The Python API leaves optuna's logging as the caller set it."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def distribution(domain: Domain) -> BaseDistribution:
    """The optuna distribution of a decision's domain (choices stay JSON scalars)."""
    if isinstance(domain, IntRange):
        return IntDistribution(domain.low, domain.high, step=domain.step)
    if isinstance(domain, FloatRange):
        return FloatDistribution(domain.low, domain.high, log=domain.log)
    if isinstance(domain, (Choice, Flag)):
        return CategoricalDistribution(tuple(domain.values()))
    raise TypeError(f"no optuna distribution for {domain!r}")


def distributions(space: Space, point: Mapping[str, Scalar]) -> dict[str, BaseDistribution]:
    """Path → distribution for every active decision of a valid `point` (for `create_trial`)."""
    return {site.path: distribution(site.domain) for site in space.trace(point).sites}


def suggest_point(space: Space, trial: optuna.Trial) -> Point:
    """A point of `space` drawn define-by-run through `trial`: one suggest per ACTIVE decision,
    named by its path. Params fixed by `study.enqueue_trial` are returned as they are, which is
    how a point chosen elsewhere is put into a study with its params."""
    values: dict[str, Scalar] = {}
    while (site := space.next_decision(values)) is not None:
        dist = distribution(site.domain)
        if isinstance(dist, IntDistribution):
            value: Scalar = trial.suggest_int(site.path, dist.low, dist.high, step=dist.step)
        elif isinstance(dist, FloatDistribution):
            value = trial.suggest_float(site.path, dist.low, dist.high, log=dist.log)
        else:
            choices = cast(CategoricalDistribution, dist).choices
            value = cast(Scalar, trial.suggest_categorical(site.path, choices))
        values[site.path] = value
    return Point(values)


class OptunaSearcher(BaseSearcher):
    """A `BaseSearcher` over an in-memory optuna study: `ask` is `study.ask()` + `suggest_point`,
    `tell` is `study.tell()`, `restore` adds the history as finished trials (`add_trial`).

    With `n_objectives > 1` a result is a tuple of that many scores, all MAXIMISED (negate a
    cost such as a parameter count); None, or a tuple holding NaN or -inf, is a failed trial.
    `best` and `history` rank by the first objective; the Pareto front is `study.best_trials`.
    Failed trials are optuna FAIL trials, which its samplers leave out of their models.
    """

    def __init__(self, space: Space, *, seed: int = 0, n_objectives: int = 1) -> None:
        self.n_objectives = n_objectives
        super().__init__(space, seed=seed)

    @abstractmethod
    def _sampler(self, seed: int) -> optuna.samplers.BaseSampler:
        """A fresh sampler seeded with `seed` (one per ask: see the module docstring)."""

    def _reset(self) -> None:
        self.study = optuna.create_study(directions=["maximize"] * self.n_objectives)
        self.pending: dict[Point, list[int]] = {}

    def _propose(self) -> Point:
        self.study.sampler = self._sampler(self.rng.getrandbits(32))
        for _ in range(MAX_REJECTS):
            trial = self.study.ask()
            point = suggest_point(self.space, trial)
            if self.space.satisfies(point):
                return self._hold(point, trial.number)
            # a rejected proposal is a failed trial, so TPE learns to avoid the region
            trial.set_user_attr("reason", "violates a require")
            self.study.tell(trial, state=TrialState.FAIL)
        point = self.space.sample(self.rng)
        self.study.enqueue_trial(dict(point))
        trial = self.study.ask()
        return self._hold(suggest_point(self.space, trial), trial.number)

    def _hold(self, point: Point, number: int) -> Point:
        self.pending.setdefault(point, []).append(number)
        return point

    def tell(self, point: Mapping[str, Scalar], result: object) -> None:
        """Record `point`'s result: a float (or a tuple of `n_objectives` floats); None or NaN
        is a failed trial. A point that was not asked is added as a finished trial."""
        valid = self.space.validate(point)
        values = self._values(result)
        state = TrialState.FAIL if values is None else TrialState.COMPLETE
        numbers = self.pending.get(valid)
        if numbers:
            self.study.tell(numbers.pop(0), values, state=state)
        else:
            self.study.add_trial(optuna.trial.create_trial(
                state=state, values=values, params=dict(valid),
                distributions=distributions(self.space, valid)))
        first = result[0] if isinstance(result, Sequence) else result
        self.history.append((valid, score_of(first)))
        self.seen.add(valid)

    def _values(self, result: object) -> list[float] | None:
        """The optuna values of a result, or None for a failure."""
        if result is None:
            return None
        parts = list(result) if isinstance(result, Sequence) else [result]
        if len(parts) != self.n_objectives:
            raise ValueError(f"expected {self.n_objectives} objective(s), got {result!r}")
        values = [float(cast(float, v)) for v in parts]
        # -inf is `WORST`, what a failure is stored as in `history`: restoring from it fails too
        return None if any(math.isnan(v) or v == WORST for v in values) else values

    def _observe(self, point: Point, score: float) -> None:  # `tell` is overridden
        raise NotImplementedError


class TPE(OptunaSearcher):
    """Optuna's TPE, multivariate with group decomposition (each branch's decisions model
    together: searchers.md §1.6). `constant_liar` is off: with it, asks that were never told
    (running trials) would steer TPE, and the restore guarantee would not hold."""

    def _sampler(self, seed: int) -> optuna.samplers.BaseSampler:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(multivariate=True, group=True, seed=seed,
                                              constant_liar=False)


class NSGAII(OptunaSearcher):
    """Optuna's NSGA-II, for several objectives (`n_objectives`; a tuple result per tell)."""

    def __init__(self, space: Space, *, seed: int = 0, n_objectives: int = 2,
                 population_size: int = 10) -> None:
        self.population_size = population_size
        super().__init__(space, seed=seed, n_objectives=n_objectives)

    def _sampler(self, seed: int) -> optuna.samplers.BaseSampler:
        return optuna.samplers.NSGAIISampler(population_size=self.population_size, seed=seed)


def running_trial(study: optuna.Study, number: int) -> optuna.Trial:
    """The live `Trial` of a study's trial `number` (optuna has no public lookup by number;
    this is the one place that reads its storage directly)."""
    trial_id = study._storage.get_trial_id_from_study_id_trial_number(
        study._study_id, number)
    return optuna.trial.Trial(study, trial_id)
