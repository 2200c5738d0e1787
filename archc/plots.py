"""PNG plots of a study for `archc show --plots DIR`, drawn with matplotlib (Agg, no display).

Two figures, each meant to be read at a glance: quiet grey for every trial, one accent colour
for what matters (the best-so-far line, the Pareto front), labelled axes with the metric and
its direction, no top/right frame, no legend box.

- `history.png`: the first objective of every complete trial by trial number (pruned trials
  as hollow circles at their last reported value), and the best so far as a step line.
- `pareto.png` (two or more objectives): every complete trial on the first two objectives,
  the non-dominated ones in the accent colour joined by a step line.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archc.errors import ArchError

if TYPE_CHECKING:
    import optuna

    from archc.search.objectives import Objective

__all__ = ["write_plots"]

ACCENT, QUIET, INK = "#1f6feb", "#9aa4b2", "#24292f"


def write_plots(study: optuna.Study, objectives: Sequence[Objective], out: str | Path
                ) -> list[Path]:
    """Write the study's plots into `out` (created if needed) and return their paths."""
    plt = _pyplot()
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    trials = study.get_trials(deepcopy=False)
    written = [_history(plt, study, trials, objectives[0], folder / "history.png")]
    if len(objectives) > 1:
        written.append(_pareto(plt, study, trials, objectives[:2], folder / "pareto.png"))
    return written


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise ArchError("--plots needs matplotlib", hint="pip install matplotlib "
                        "(or pip install 'archc[plots]')") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    plt.rcParams.update({"font.size": 10, "axes.spines.top": False,
                         "axes.spines.right": False, "axes.edgecolor": QUIET,
                         "axes.labelcolor": INK, "xtick.color": INK, "ytick.color": INK,
                         "axes.titleweight": "bold", "axes.titlelocation": "left"})
    return plt


def _label(objective: Objective) -> str:
    better = "higher" if objective.direction == "maximize" else "lower"
    return f"{objective.metric} ({better} is better)"


def _history(plt: Any, study: optuna.Study, trials: Sequence[optuna.trial.FrozenTrial],
             objective: Objective, path: Path) -> Path:
    from archc.search._optuna import TrialState
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    pruned = [t for t in trials if t.state == TrialState.PRUNED and t.values]
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=150)
    ax.scatter([t.number for t in done], [t.values[0] for t in done], s=18, color=QUIET,
               label="trial", zorder=2)
    if pruned:
        ax.scatter([t.number for t in pruned], [t.values[0] for t in pruned], s=18,
                   facecolors="none", edgecolors=QUIET, label="pruned", zorder=2)
    best, xs, ys = None, [], []
    pick = max if objective.direction == "maximize" else min
    for trial in sorted(done, key=lambda t: t.number):
        best = trial.values[0] if best is None else pick(best, trial.values[0])
        xs.append(trial.number)
        ys.append(best)
    if xs:
        ax.step(xs, ys, where="post", color=ACCENT, linewidth=2, zorder=3)
        ax.annotate(f"best {ys[-1]:.4g}", (xs[-1], ys[-1]), xytext=(0, 6),
                    textcoords="offset points", color=ACCENT, fontweight="bold",
                    ha="right", va="bottom")
    from matplotlib.ticker import MaxNLocator
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("trial")
    ax.set_ylabel(_label(objective))
    ax.set_title(f"{study.study_name}: {objective.metric} by trial, best so far")
    ax.grid(axis="y", color="#eaeef2", linewidth=0.8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _pareto(plt: Any, study: optuna.Study, trials: Sequence[optuna.trial.FrozenTrial],
            objectives: Sequence[Objective], path: Path) -> Path:
    from archc.search._optuna import TrialState
    from archc.search.evaluate import pareto_front
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    front = sorted(pareto_front(study), key=lambda t: t.values[0])
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=150)
    ax.scatter([t.values[0] for t in done], [t.values[1] for t in done], s=18, color=QUIET,
               zorder=2)
    ax.step([t.values[0] for t in front], [t.values[1] for t in front], where="pre",
            color=ACCENT, linewidth=1.5, zorder=3)
    ax.scatter([t.values[0] for t in front], [t.values[1] for t in front], s=30,
               color=ACCENT, zorder=4)
    ax.set_xlabel(_label(objectives[0]))
    ax.set_ylabel(_label(objectives[1]))
    for values, set_scale in (([t.values[0] for t in done], ax.set_xscale),
                              ([t.values[1] for t in done], ax.set_yscale)):
        if values and min(values) > 0 and max(values) / min(values) > 50:
            set_scale("log")  # costs such as params span decades
    ax.set_title(f"{study.study_name}: Pareto front ({len(front)} of {len(done)} trials)")
    ax.grid(color="#eaeef2", linewidth=0.8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
