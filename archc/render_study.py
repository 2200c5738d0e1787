"""Rich tables of a study for `archc search`, `show` and `evaluate`: the leaderboard, the Pareto
front, the failures by reason, and test-split evaluations.

Nothing here decides anything: ranking and the front come from `archc.search.evaluate`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    import optuna

    from archc.search.evaluate import Evaluation
    from archc.search.objectives import Objective

__all__ = ["leaderboard", "pareto_table", "failures_table", "evaluation_table"]

_ARROW = {"maximize": "↑", "minimize": "↓"}


def _objectives(study: optuna.Study, objectives: Sequence[Objective]) -> Sequence[Objective]:
    """`objectives`, else those the study keeps."""
    if objectives:
        return objectives
    from archc.search.objectives import from_stored
    return from_stored(study.user_attrs.get("objectives"))


def _counts(trials: Sequence[optuna.trial.FrozenTrial]) -> str:
    states = Counter(t.state.name.lower() for t in trials)
    parts = [f"{states[s]} {s}" for s in ("complete", "pruned", "fail", "running") if states[s]]
    return ", ".join(parts) or "no trials"


def leaderboard(study: optuna.Study, objectives: Sequence[Objective] = (), top: int = 10
                ) -> Table:
    """The best complete trials, best first by the first objective: its values, parameters,
    epochs run, training seconds, the test score when `archc evaluate` stored one, a note."""
    from archc.search.evaluate import ranked
    objectives = _objectives(study, objectives)
    evaluation = study.user_attrs.get("evaluation") or {}
    trials = study.get_trials(deepcopy=False)
    table = Table(title=f"study {escape(study.study_name)}: {len(trials)} trials "
                  f"({_counts(trials)})", header_style="bold", title_style="bold")
    table.add_column("trial", justify="right", no_wrap=True)
    for objective in objectives:
        table.add_column(f"{objective.metric} {_ARROW[objective.direction]}", justify="right",
                         no_wrap=True)
    extra = [c for c in ("params", "epochs", "seconds")
             if c not in {o.metric for o in objectives}]
    for column in extra:
        table.add_column(column, justify="right", no_wrap=True)
    if evaluation:
        table.add_column("test accuracy", justify="right", no_wrap=True)
    table.add_column("note", no_wrap=True, overflow="ellipsis", max_width=24)
    for rank, trial in enumerate(ranked(study, tuple(objectives))[:top]):
        attrs = trial.user_attrs
        columns = {"params": f"{attrs.get('param_count') or 0:,}",
                   "epochs": str(len(attrs.get("metrics_per_epoch") or ())),
                   "seconds": f"{attrs.get('wall_time') or 0:.1f}"}
        row = [str(trial.number),
               *(_num(v, o, bold=rank == 0) for v, o in zip(trial.values, objectives,
                                                              strict=True)),
               *(columns[c] for c in extra)]
        if evaluation:
            row.append(_test(evaluation.get(str(trial.number))))
        row.append(f"[dim]{escape(attrs.get('reason') or '')}[/]")
        table.add_row(*row)
    return table


def pareto_table(study: optuna.Study, objectives: Sequence[Objective]) -> Table:
    """The non-dominated trials of a multi-objective study, by the first objective."""
    from archc.search.evaluate import pareto_front, ranked
    front = {t.number for t in pareto_front(study)}
    table = Table(title=f"Pareto front: {len(front)} trials", header_style="bold",
                  title_style="bold")
    table.add_column("trial", justify="right", no_wrap=True)
    for objective in objectives:
        table.add_column(f"{objective.metric} {_ARROW[objective.direction]}", justify="right")
    for trial in ranked(study, tuple(objectives)):
        if trial.number in front:
            table.add_row(str(trial.number),
                          *(_num(v, o) for v, o in zip(trial.values, objectives, strict=True)))
    return table


def failures_table(study: optuna.Study) -> Table | None:
    """Failed and pruned trials counted by reason (None when every trial completed)."""
    reasons = Counter((t.state.name.lower(), _first_line(t.user_attrs.get("reason")))
                      for t in study.get_trials(deepcopy=False)
                      if t.state.name in ("FAIL", "PRUNED"))
    if not reasons:
        return None
    table = Table(title="not completed, by reason", header_style="bold", title_style="bold")
    for column in ("status", "trials", "reason"):
        table.add_column(column, justify="right" if column == "trials" else "left")
    for (state, reason), count in reasons.most_common():
        table.add_row(state, str(count), escape(reason))
    return table


def evaluation_table(evaluations: Sequence[Evaluation], objective: Objective) -> Table:
    """`archc evaluate`: each trial's validation score from the search and its test metrics,
    mean ± sample standard deviation over the fresh seeds."""
    names = sorted({n for e in evaluations for n in e.summary()})
    table = Table(title="test split, retrained on fresh seeds (mean ± sd)", header_style="bold",
                  title_style="bold")
    failed = any(e.failures for e in evaluations)
    table.add_column("trial", justify="right", no_wrap=True)
    table.add_column(f"{objective.metric} (search)", justify="right")
    for name in names:
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("seeds", justify="right")
    if failed:
        table.add_column("failures")
    for e in evaluations:
        summary = e.summary()
        cells = [f"{summary[n][0]:.4f} ± {summary[n][1]:.4f}" if n in summary else "—"
                 for n in names]
        table.add_row(str(e.number), _num(e.val, objective), *cells,
                      f"{len(e.runs)}/{len(e.seeds)}",
                      *([escape("; ".join(e.failures))] if failed else []))
    return table


def _num(value: Any, objective: Objective, bold: bool = False) -> str:
    """A metric value: counts (params, FLOPs) as whole numbers, the rest to 4 decimals."""
    whole = objective.metric in ("params", "flops") or abs(value) >= 1e4
    text = f"{value:,.0f}" if whole else f"{value:.4f}"
    return f"[bold]{text}[/]" if bold else text


def _test(stored: dict | None) -> str:
    if not stored or "test_accuracy" not in stored:
        return "[dim]—[/]"
    mean, sd = stored["test_accuracy"]
    return f"{mean:.4f} ± {sd:.4f}"


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0] if (text or "").strip() else "—"
