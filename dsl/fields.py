"""The fields of `train { }` and `search { }`, and the task constants a spec may read.

They are Hyper records like block hyperparameters, so the checker validates them the same way;
the trainer and the search runner read the same tables.
"""

from __future__ import annotations

from archc.dsl.signature import Hyper

__all__ = ["TRAIN_FIELDS", "SEARCH_FIELDS", "TASK_CONSTANTS", "SEARCHERS", "METRICS"]


def _table(*fields: Hyper) -> dict[str, Hyper]:
    return {f.name: f for f in fields}


TRAIN_FIELDS = _table(
    Hyper("optimizer", "str", "adamw", "the optimizer", options=("adamw", "adam", "sgd", "lion")),
    Hyper("lr", "float", 1e-3, "peak learning rate", low=0, positive=True),
    Hyper("weight_decay", "float", 0.01, "decoupled weight decay", low=0),
    Hyper("momentum", "float", 0.9, "SGD momentum (beta1 of Adam, AdamW and Lion)", low=0,
          high=1),
    Hyper("batch", "int", 64, "examples per step", low=1),
    Hyper("epochs", "int", 10, "passes over the training split", low=1),
    Hyper("steps", "int", 0, "optimizer steps (0: use epochs)", low=0),
    Hyper("schedule", "str", "cosine", "learning-rate schedule",
          options=("cosine", "linear", "constant", "onecycle", "step")),
    Hyper("warmup", "float", 0.0, "warm-up, as a fraction of all steps", low=0, high=1),
    Hyper("grad_clip", "float", 1.0, "gradient-norm clipping (0: off)", low=0),
    Hyper("label_smoothing", "float", 0.0, "label smoothing of the loss", low=0, high=1),
    Hyper("dropout", "float", 0.0, "rate of every dropout the spec left at 0 (docs/tasks.md)",
          low=0, high=1),
)

SEARCHERS = ("random", "random_arch", "mcts", "smbo", "evolution", "local", "tpe", "nsga2")
METRICS = ("val_accuracy", "val_loss", "val_bpc", "params", "flops", "latency", "memory",
           "train_loss")

SEARCH_FIELDS = _table(
    Hyper("task", "str", "digits", "the task: a built-in name or module:function"),
    Hyper("objective", "str", "maximize(val_accuracy)", "one or more maximize/minimize(metric)"),
    Hyper("trials", "int", 20, "trials to run", low=1),
    Hyper("budget", "str", "", "per-trial budget: `60s`, `5 epochs`, `200 steps`"),
    Hyper("timeout", "str", "", "wall-clock limit of the whole search, e.g. `1h`"),
    Hyper("searcher", "str", "random", "the search algorithm", options=SEARCHERS),
    Hyper("seed", "int", 0, "the search seed", low=0),
    Hyper("storage", "str", "", "an optuna storage URL (default: SQLite file here)"),
    Hyper("study", "str", "", "the study name (default: the space's name)"),
    Hyper("pruner", "str", "none", "early stopping of weak trials",
          options=("none", "median", "halving", "hyperband")),
    Hyper("workers", "int", 1, "parallel trials in this process", low=1),
)

TASK_CONSTANTS = {
    "classes": "number of classes of a classification task",
    "vocab": "vocabulary size of a language task",
    "length": "sequence length of the input",
    "channels": "input channels",
    "height": "input height (images)",
    "width": "input width (images)",
    "features": "input features (flat inputs)",
}
"""`task.<name>` constants: known only once a task is chosen, so never a domain bound."""
