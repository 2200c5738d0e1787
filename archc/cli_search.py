"""`archc search`: flags in, `run_search` called, live progress and a leaderboard out.

The progress line under the trial log shows trial i/N, the best score so far, the last result
and an estimated time left (from the mean time of this run's trials). Ctrl-C stops cleanly:
the running trial is recorded failed ("interrupted"), the leaderboard of what finished is
printed, and the exit status is 130; running the same command again resumes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from archc.dsl.fields import SEARCH_FIELDS, SEARCHERS

SEARCHER_HELP = (f"{', '.join(SEARCHERS)} (default: the spec's search {{ }}, else "
                 f"{SEARCH_FIELDS['searcher'].default}; nsga2 for several objectives).")


def search(
    spec: Annotated[Path, typer.Argument(help="A .arch spec file.", show_default=False)],
    searcher: Annotated[str | None, typer.Option(help=SEARCHER_HELP)] = None,
    trials: Annotated[int | None, typer.Option(
        help="Trials the study should hold (default: the spec's, else 20).", min=1)] = None,
    task: Annotated[str | None, typer.Option(
        help="A built-in task (digits, mnist1d, …) or module:function (default: the spec's).")
    ] = None,
    data: Annotated[str | None, typer.Option(help="The task's data path, where it reads one.")
                    ] = None,
    objective: Annotated[str | None, typer.Option(
        help="e.g. 'maximize(val_accuracy), minimize(params)' (default: the spec's).")
    ] = None,
    pruner: Annotated[str | None, typer.Option(
        help="none, median, halving or hyperband: stop weak trials early from their "
             "per-epoch reports (default: the spec's, else none).")] = None,
    epochs: Annotated[int | None, typer.Option(
        help="Epochs per trial (default: the spec's budget, else train { }).", min=1)] = None,
    storage: Annotated[str | None, typer.Option(
        help="An optuna storage URL (default: sqlite:///archc.db here).")] = None,
    study: Annotated[str | None, typer.Option(help="Study name (default: the space's).")] = None,
    seed: Annotated[int | None, typer.Option(help="Search seed (default: the spec's, else 0).")
                    ] = None,
    timeout: Annotated[float | None, typer.Option(
        help="Start no trial after this many seconds (default: the spec's timeout).",
        min=0)] = None,
    threads: Annotated[int | None, typer.Option(
        help="Torch threads per trial (default 1: small networks gain little from more).",
        min=1)] = None,
) -> None:
    """Search a spec's space on a task: every trial is trained (or reused when the same network
    with the same settings was trained before) and stored; re-running resumes the study."""
    import archc
    from archc.render_study import leaderboard
    from archc.search._optuna import quiet
    from archc.search.runner import Interrupted, run_search
    quiet()  # our own progress says it all
    space = archc.load(spec)
    live = _Live()
    try:
        result = run_search(
            space, spec_text=spec.read_text(encoding="utf-8"), spec_name=str(spec),
            searcher=searcher, trials=trials, task=task, data=data, objective=objective,
            pruner=pruner, storage=storage, study=study, seed=seed, epochs=epochs,
            threads=threads, timeout=timeout, on_start=live.start, on_trial=live.trial)
    except Interrupted as stop:
        live.stop()
        live.console.print("[yellow]interrupted[/]: the running trial is recorded as failed "
                           "(interrupted); every finished trial is stored. Run the same "
                           "command to resume.")
        live.console.print(leaderboard(stop.study, live.objectives))
        raise typer.Exit(130) from None
    finally:
        live.stop()
    live.console.print(leaderboard(result, live.objectives))


class _Live:
    """The trial log and the progress line under it."""

    def __init__(self) -> None:
        from rich.console import Console
        self.console = Console()
        self.progress: Any = None
        self.objectives: tuple = ()
        self.best: float | None = None

    def start(self, plan: Any, study: Any) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        from archc.search.evaluate import ranked
        self.objectives = plan.objectives
        done = ranked(study, plan.objectives)
        made = len(study.get_trials(deepcopy=False))
        self.best = done[0].values[0] if done else None
        self.console.print(f"[bold]study {plan.study_name}[/] · task {plan.task_name} · "
                           f"{', '.join(map(str, plan.objectives))} · searcher "
                           f"{plan.searcher_name} · pruner {plan.pruner} · "
                           f"{made} of {plan.trials} trials stored")
        earlier = study.user_attrs.get("spec_changed_after")
        if earlier:
            self.console.print(f"[yellow]note:[/] the spec differs from the one that made the "
                               f"first {earlier} trials; they keep their spec hash, and "
                               "`archc evaluate`/`export` now rebuild points from this spec")
        self.progress = Progress(
            TextColumn("trial {task.completed:>3.0f}/{task.total:.0f}"), BarColumn(),
            TextColumn("best [bold]{task.fields[best]}[/]"),
            TextColumn("last {task.fields[last]}"), TextColumn("ETA"),
            TimeRemainingColumn(), console=self.console, transient=True)
        self.task = self.progress.add_task("search", total=plan.trials,
                                           completed=made, best=self._best(),
                                           last="—")
        self.progress.start()

    def trial(self, outcome: Any) -> None:
        first = self.objectives[0]
        if outcome.score is not None and outcome.status != "pruned" and (
                self.best is None or (outcome.score > self.best) == (
                    first.direction == "maximize")):
            self.best = outcome.score
        self.console.print(_line(outcome, self.objectives))
        if self.progress is not None:
            self.progress.update(self.task, advance=1, best=self._best(),
                                 last=_values(outcome.values))

    def _best(self) -> str:
        name = self.objectives[0].metric
        return f"{name} —" if self.best is None else f"{name} {self.best:.4g}"

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


_STATUS = {"complete": "green", "reused": "cyan", "pruned": "yellow", "fail": "red"}


def _line(outcome: Any, objectives: tuple) -> str:
    """One trial's log line: number, status, objective values, parameters, time, reason."""
    from rich.markup import escape
    names = ", ".join(o.metric for o in objectives)
    colour = _STATUS.get(outcome.status, "white")
    note = f"  [dim]{escape(outcome.reason)}[/]" if outcome.reason else ""
    return (f"trial {outcome.number:>3}  [{colour}]{outcome.status:<8}[/] {names} "
            f"{_values(outcome.values):<14} params {outcome.params or 0:>9,}  "
            f"{outcome.seconds:6.1f}s{note}")


def _values(values: tuple[float, ...] | None) -> str:
    return "—" if values is None else ", ".join(f"{v:.4g}" for v in values)
