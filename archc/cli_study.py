"""`archc show`, `archc evaluate` and `archc export`: a stored study in, tables, plots and
files out. Each opens the study by name (`--storage`, default `sqlite:///archc.db` here) and
rebuilds its space from the spec text the search stored, so only the database is needed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

StudyName = Annotated[str, typer.Argument(help="The study's name (by default the space's).",
                                          show_default=False)]
Storage = Annotated[str | None, typer.Option(
    help="The optuna storage URL the search used (default: sqlite:///archc.db here).")]


Data = Annotated[str | None, typer.Option(
    help="The task's data path (default: the one the search used).")]


def _open(study: str, storage: str | None, data: str | None = None) -> Any:
    import dataclasses

    from archc.search._optuna import quiet
    from archc.search.evaluate import Search
    from archc.search.study import load_study
    quiet()
    search = Search.of(load_study(study, storage))
    return search if data is None else dataclasses.replace(search, data=data)


def _console() -> Any:
    from rich.console import Console
    return Console()


def show(
    study: StudyName,
    storage: Storage = None,
    top: Annotated[int, typer.Option(help="Rows of the leaderboard.", min=1)] = 10,
    plots: Annotated[Path | None, typer.Option(
        help="Write history.png (and pareto.png for several objectives) into this folder.")
    ] = None,
) -> None:
    """Show a study: the leaderboard, the Pareto front for several objectives, the failures by
    reason, and optionally PNG plots."""
    from archc.render_study import failures_table, leaderboard, pareto_table
    search = _open(study, storage)
    console = _console()
    console.print(leaderboard(search.study, search.objectives, top=top))
    if len(search.objectives) > 1:
        console.print(pareto_table(search.study, search.objectives))
    failures = failures_table(search.study)
    if failures is not None:
        console.print(failures)
    if plots is not None:
        from archc.plots import write_plots
        for path in write_plots(search.study, search.objectives, plots):
            console.print(f"wrote {path}")


def evaluate(
    study: StudyName,
    storage: Storage = None,
    top: Annotated[int, typer.Option(help="How many of the best trials.", min=1)] = 3,
    seeds: Annotated[int, typer.Option(help="Fresh seeds per trial.", min=1)] = 3,
    data: Data = None,
) -> None:
    """Retrain the best trials on fresh seeds and report the test split (mean ± sd): the
    search itself never sees the test split."""
    from archc.render_study import evaluation_table
    from archc.search.evaluate import evaluate as run_evaluation
    search = _open(study, storage, data)
    console = _console()

    def progress(number: int, seed: int, result: Any) -> None:
        if isinstance(result, str) or not result.ok:
            reason = result if isinstance(result, str) else result.reason
            console.print(f"trial {number:>3}  seed {seed}  [red]failed[/] {reason}")
            return
        metrics = result.metrics
        shown = "  ".join(f"{k} {v:.4f}" for k, v in sorted(metrics.items())
                          if k.startswith("test_"))
        console.print(f"trial {number:>3}  seed {seed}  {shown}  {result.seconds:5.1f}s")

    evaluations = run_evaluation(search, top, seeds, on_run=progress)
    if not evaluations:
        from archc.errors import ArchError
        raise ArchError(f"study '{study}' has no complete trial to evaluate",
                        hint="run `archc search` until one completes")
    console.print(evaluation_table(evaluations, search.objectives[0]))


def export(
    study: StudyName,
    out: Annotated[Path, typer.Option("-o", "--out", help="The folder to write.")],
    trial: Annotated[str, typer.Option(help="'best' or a trial number.")] = "best",
    storage: Storage = None,
    format: Annotated[str, typer.Option(
        "--format", help="py: model.py (imports only torch) + weights.safetensors; "
        "pt2: a torch.export program.")] = "py",
    untrained: Annotated[bool, typer.Option(
        "--untrained", help="Export the initial weights instead of retraining the trial "
                            "with its own seed.")] = False,
    data: Data = None,
) -> None:
    """Export a trial's network: retrained with the trial's seed and settings (the weights the
    search scored), then written as plain PyTorch."""
    from archc.search.evaluate import export_trial
    search = _open(study, storage, data)
    chosen = search.trial(trial)
    files, metrics = export_trial(search, chosen, out, format=format, trained=not untrained)
    console = _console()
    scores = "  ".join(f"{k} {v:.4f}" for k, v in sorted(metrics.items()) if "loss" not in k)
    console.print(f"trial {chosen.number}" + (f": {scores}" if scores else " (untrained)"))
    for path in files:
        print(path)
