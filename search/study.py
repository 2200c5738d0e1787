"""Study storage: every trial of a search kept in an optuna study, so a run resumes and reuses.

The default storage is a SQLite file in the working directory, `sqlite:///archc.db`: zero
set-up, and `optuna.load_study` / optuna-dashboard open it as they are. Any optuna storage URL
is accepted (`postgresql://user@host/db`, …). `load_if_exists=True`, so re-running the same
command resumes the study and trial numbering goes on.

A trial holds the point's decisions as its optuna params (when it was begun with
`begin_trial`) and, as user attributes (JSON), what `record_trial` is given: the point, its
structural hash, parameter count (`param_count`), FLOPs, per-epoch metrics, wall time, seed,
spec hash, status and failure reason. A failed trial is an optuna FAIL trial with its
`reason`: recorded, never lost, and the study goes on. Optuna is reached through
`archc.search._optuna`, the one seam (STYLE.md §7).
"""

from __future__ import annotations

import json
import math
import os
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

from archc.dsl.domain import Scalar
from archc.dsl.point import Point
from archc.dsl.space import Space
from archc.errors import ArchError, did_you_mean
from archc.search._optuna import (
    TrialState,
    distribution,
    optuna,
    running_trial,
    suggest_point,
)

__all__ = ["DEFAULT_STORAGE", "open_study", "load_study", "begin_trial", "record_trial", "history",
           "find_by_hash", "mark_interrupted", "INTERRUPTED"]

DEFAULT_STORAGE = "sqlite:///archc.db"
"""A SQLite file `archc.db` in the working directory."""

STATES = {"complete": TrialState.COMPLETE, "fail": TrialState.FAIL,
          "pruned": TrialState.PRUNED}
"""`status` as `record_trial` takes it → optuna's trial state."""

INTERRUPTED = "interrupted"
"""The reason of a trial whose process stopped (Ctrl-C, or killed) before it finished."""


def open_study(name: str, storage: str | None = None,
               directions: Sequence[str] = ("maximize",),
               pruner: optuna.pruners.BasePruner | None = None) -> optuna.Study:
    """Open study `name` in `storage` (default `DEFAULT_STORAGE`), creating it if needed.
    `pruner` judges the per-epoch reports of this process's trials (optuna keeps no pruner
    in storage)."""
    return optuna.create_study(study_name=name, storage=_storage(storage),
                               directions=[cast(Any, d) for d in directions],
                               pruner=pruner, load_if_exists=True)


def load_study(name: str, storage: str | None = None) -> optuna.Study:
    """The existing study `name` in `storage`; a missing database, a bad URL or an unknown
    study is an ArchError naming the flag and listing the studies that are there."""
    url = storage or DEFAULT_STORAGE
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        path = Path(url.removeprefix("sqlite:///"))
        if not path.is_file():
            raise ArchError(f"--storage: no database file '{path}'",
                            hint="run `archc search` first, or give the --storage URL "
                                 "it used")
    opened = _storage(url)
    names = [s.study_name for s in optuna.get_all_study_summaries(opened)]
    if name not in names:
        raise ArchError(f"no study '{name}' in {url}",
                        hint=did_you_mean(name, names) or
                        (f"studies there: {', '.join(names)}" if names else
                         "it holds no study yet"))
    return optuna.load_study(study_name=name, storage=opened)


def _storage(url: str | None) -> optuna.storages.BaseStorage:
    """The optuna storage of `url` (default `DEFAULT_STORAGE`); one that cannot be opened (an
    unknown scheme, a missing driver, an unreachable server) is the user's error."""
    url = url or DEFAULT_STORAGE
    try:
        return optuna.storages.get_storage(url)
    except Exception as error:  # sqlalchemy and driver errors have no common base
        raise ArchError(f"--storage: cannot open '{url}': {str(error).splitlines()[0]}",
                        hint="an optuna storage URL, e.g. sqlite:///archc.db or "
                             "postgresql://user@host/db") from None


def begin_trial(study: optuna.Study, space: Space, point: Mapping[str, Scalar],
                known: Mapping[str, Any] | None = None) -> optuna.Trial:
    """A running trial whose params are `point`'s decisions (named by path), for a point chosen
    by any searcher: the point is enqueued, so the suggests return exactly its values. `known`
    (from `known_domains`) lets a decision whose domain the spec has since changed fail here,
    as a user error, before any trial is opened."""
    trace = space.validated_trace(point)  # one walk: the point's values and its decisions
    valid = Point(trace.values)
    stored = known or {}
    for site in trace.sites if stored else ():
        if site.path in stored:
            _check_domain(study, site.path, stored[site.path], distribution(site.domain))
    study.enqueue_trial(dict(valid))
    trial = study.ask()
    trial.set_user_attr("worker", _WORKER)
    trial.set_user_attr("point", dict(valid))
    suggest_point(space, trial)
    return trial


_WORKER = f"{socket.gethostname()}:{os.getpid()}"
"""This process, as a running trial records it, so a later run can tell a trial whose process
died (stale) from one another live worker is running."""


def mark_interrupted(study: optuna.Study, number: int | None = None) -> list[int]:
    """Record trial `number` failed with reason "interrupted" if it is still running, or, with
    no number, every RUNNING trial whose process is gone: one begun on this host by a process
    that no longer exists, or without a recorded worker. Trials of live workers (other
    processes, other hosts sharing the storage) are left alone. Returns the numbers marked."""
    marked = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if (trial.number == number) if number is not None else _stale(trial):
            live = running_trial(study, trial.number)
            live.set_user_attr("status", "fail")
            live.set_user_attr("reason", INTERRUPTED)
            study.tell(live, state=TrialState.FAIL)
            marked.append(trial.number)
    return marked


def _stale(trial: optuna.trial.FrozenTrial) -> bool:
    host, _, pid = str(trial.user_attrs.get("worker", "")).rpartition(":")
    if not pid.isdigit():
        return True
    if host != socket.gethostname():
        return False
    if int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # exists, owned by someone else
        return False
    return False


def record_trial(study: optuna.Study, trial_or_number: optuna.Trial | int, *,
                 point: Mapping[str, Scalar], structural_hash: str, params: int | None = None,
                 flops: int | None = None, metrics_per_epoch: Sequence[Mapping] = (),
                 wall_time: float | None = None, seed: int | None = None,
                 spec_hash: str | None = None, status: str = "complete",
                 reason: str | None = None,
                 value: float | Sequence[float] | None = None) -> optuna.trial.FrozenTrial:
    """Finish a running trial with its record. `status` is complete, fail or pruned; `value`
    is the score (a sequence for several objectives). A complete trial without a finite value
    is recorded as failed ("no result"), so nothing is lost and the study goes on."""
    trial = (running_trial(study, trial_or_number) if isinstance(trial_or_number, int)
             else trial_or_number)
    state = STATES[status]
    values = _values(value)
    if state == TrialState.COMPLETE and values is None:
        state, reason = TrialState.FAIL, reason or "no result"
    attrs = {"point": dict(point), "structural_hash": structural_hash, "param_count": params,
             "flops": flops, "metrics_per_epoch": list(metrics_per_epoch),
             "wall_time": wall_time, "seed": seed, "spec_hash": spec_hash,
             "status": state.name.lower(), "reason": reason}
    for key, attr in attrs.items():
        trial.set_user_attr(key, _json_safe(attr))
    return study.tell(trial, values if state == TrialState.COMPLETE else None, state=state)


def history(study: optuna.Study) -> list[tuple[Point, object]]:
    """(point, result) of the finished trials in trial order, for `searcher.restore`: a failed
    trial's result is None, a pruned one's its last reported value (None if it reported
    nothing), as the searcher was told live; several objectives give a tuple."""
    out: list[tuple[Point, object]] = []
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL,
                                                      TrialState.PRUNED))
    for trial in sorted(trials, key=lambda t: t.number):
        point = Point(trial.user_attrs.get("point", trial.params))
        if trial.state == TrialState.PRUNED:
            out.append((point, trial.value if trial.values else None))
        elif trial.state != TrialState.COMPLETE:
            out.append((point, None))
        elif len(trial.values) == 1:
            out.append((point, trial.values[0]))
        else:
            out.append((point, tuple(trial.values)))
    return out


def find_by_hash(study: optuna.Study, structural_hash: str) -> optuna.trial.FrozenTrial | None:
    """The first COMPLETED trial with this structural hash, whose result a structurally
    identical point reuses instead of training again. Failed trials are not reused: a timeout
    or out-of-memory may not happen twice."""
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if trial.user_attrs.get("structural_hash") == structural_hash:
            return trial
    return None


def _values(value: float | Sequence[float] | None) -> list[float] | None:
    if value is None:
        return None
    values = [float(v) for v in (value if isinstance(value, Sequence) else [value])]
    return values if all(math.isfinite(v) for v in values) else None


def _json_safe(value: object) -> object:
    """`value` as plain JSON: numpy scalars become numbers, NaN / inf become None, anything
    else unknown its `str` (a database must never refuse a trial's record)."""

    def scalar(obj: object) -> object:
        return obj.item() if hasattr(obj, "item") else str(obj)

    def finite(obj: object) -> object:
        if isinstance(obj, float) and not math.isfinite(obj):
            return None
        if isinstance(obj, dict):
            return {k: finite(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [finite(v) for v in obj]
        return obj

    return finite(json.loads(json.dumps(value, default=scalar)))


def _check_domain(study: optuna.Study, path: str, stored: Any, now: Any) -> None:
    """ArchError when the study recorded decision `path` with another domain than it has now."""
    try:
        optuna.distributions.check_distribution_compatibility(stored, now)
    except ValueError:
        raise ArchError(f"decision '{path}' of study '{study.study_name}' had the domain "
                        f"{_domain_text(stored)}; the spec now gives {_domain_text(now)}",
                        hint="optuna keeps one domain per decision in a study: search the "
                             "edited spec in a new study (--study NAME)") from None


def known_domains(study: optuna.Study) -> dict[str, Any]:
    """Decision path → the optuna distribution the study's trials recorded for it."""
    return {name: dist for trial in study.get_trials(deepcopy=False)
            for name, dist in trial.distributions.items()}


def _domain_text(dist: Any) -> str:
    """A distribution as the spec would write it (choices, or a range)."""
    if hasattr(dist, "choices"):
        return "choice(" + ", ".join(map(repr, dist.choices)) + ")"
    return f"{dist.low}..{dist.high}"
