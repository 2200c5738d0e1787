"""What a search optimises: one or more metrics, each maximised or minimised.

A spec states them in `search { objective = maximize(val_accuracy), minimize(params) }` (the
checker turns each into `{"maximize": "val_accuracy"}`); `archc search --objective` overrides
them with the same spelling. A metric is either one the task reports after training
(`Task.metrics`, e.g. val_accuracy, val_loss) or a cost of the compiled network, spelled as
in a `require`: `params`, `flops` and `memory` (activation bytes) from the cost model, and
`latency` (milliseconds) measured on the built module before training.
Names are checked when the search starts, so a typo fails before the first trial, with an
error pointing at the spec's `objective` line.

>>> [str(o) for o in parse_objectives("maximize(val_accuracy), minimize(params)")]
['maximize(val_accuracy)', 'minimize(params)']
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from archc.dsl.fields import SEARCH_FIELDS
from archc.errors import ArchError, CheckError, Span, did_you_mean

__all__ = ["Objective", "COST_METRICS", "DEFAULT", "from_spec", "from_stored",
           "parse_objectives", "check_metrics", "signed"]

COST_METRICS = ("params", "flops", "memory", "latency")
"""Metrics of the compiled network itself, known before training, named as `require` names
them (usually minimised, though `maximize(params)` is allowed)."""


@dataclass(frozen=True)
class Objective:
    """One metric and whether the search wants it high or low."""

    metric: str
    direction: str  # "maximize" | "minimize"

    def __str__(self) -> str:
        return f"{self.direction}({self.metric})"


_ONE = re.compile(r"\s*(maximize|minimize)\s*\(\s*([A-Za-z_][A-Za-z_0-9]*)\s*\)\s*")


def parse_objectives(text: str, flag: str = "--objective") -> tuple[Objective, ...]:
    """`maximize(val_accuracy), minimize(params)` as written on the command line."""
    out = []
    for part in text.split(","):
        match = _ONE.fullmatch(part)
        if match is None:
            raise ArchError(f"{flag} takes maximize(metric) or minimize(metric), comma-"
                            f"separated, not '{part.strip()}'",
                            hint=f"e.g. {flag} 'maximize(val_accuracy), minimize(params)'")
        out.append(Objective(match[2], match[1]))
    return tuple(out)


DEFAULT = parse_objectives(str(SEARCH_FIELDS["objective"].default))
"""The objective of a spec without one (SEARCH_FIELDS' default): maximize(val_accuracy)."""


def from_spec(value: object) -> tuple[Objective, ...]:
    """The objectives of a checked `search { }` value: a list of {"maximize": metric} maps
    (or one such map); nothing gives `DEFAULT`."""
    if not value:
        return DEFAULT
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        if isinstance(item, Mapping):
            out += [Objective(str(metric), str(sense)) for sense, metric in item.items()]
    return tuple(out) or DEFAULT


def from_stored(stored: Sequence[str] | None) -> tuple[Objective, ...]:
    """The objectives a study keeps (their spellings, as `Plan.open` stores them); a study
    without them gives `DEFAULT`.

    >>> from_stored(["minimize(val_loss)"]), from_stored(None) == DEFAULT
    ((Objective(metric='val_loss', direction='minimize'),), True)
    """
    return parse_objectives(", ".join(stored)) if stored else DEFAULT


def check_metrics(objectives: Sequence[Objective], task_metrics: Iterable[str], *,
                  task: str, spec_text: str = "", spec_name: str = "<spec>") -> None:
    """Raise a CheckError for each objective naming no metric the task or the cost model
    gives, located at the spec's `objective` field when the metric is written there."""
    known = [*task_metrics, *COST_METRICS]
    problems = []
    for objective in objectives:
        if objective.metric in known:
            continue
        hint = did_you_mean(objective.metric, known) or f"metrics: {', '.join(known)}"
        problems.append((f"task '{task}' has no metric '{objective.metric}' (its metrics and "
                         f"the cost metrics: {', '.join(known)})",
                         _metric_span(spec_text, spec_name, objective.metric), hint))
    if problems:
        from archc.errors import Diagnostic
        raise CheckError([Diagnostic(message, span, hint) for message, span, hint in problems])


def signed(objectives: Sequence[Objective], values: Sequence[float]) -> tuple[float, ...]:
    """The values as scores to maximise (minimised metrics negated): what searchers take."""
    return tuple(v if o.direction == "maximize" else -v
                 for o, v in zip(objectives, values, strict=True))


def _metric_span(text: str, name: str, metric: str) -> Span | None:
    """Where the spec's `search { objective = … }` names `metric` (None when it does not)."""
    from archc.dsl import ast
    for field in _search_fields(text, name):
        if field.name != "objective":
            continue
        for value in field.values:
            if (isinstance(value, ast.Call) and len(value.args) == 1
                    and isinstance(value.args[0].value, ast.Name)
                    and value.args[0].value.id == metric):
                return value.args[0].value.span
    return None


def field_span(text: str, name: str, field_name: str) -> Span | None:
    """Where the spec's `search { <field_name> = … }` value is written (None when it is not)."""
    for field in _search_fields(text, name):
        if field.name == field_name and field.values:
            return field.values[0].span
    return None


def _search_fields(text: str, name: str) -> list[Any]:
    """The fields of the spec's `search { }` blocks, parsed again from its text: the checked
    Space keeps their values, not where they were written, so only an error path calls this."""
    if not text:
        return []
    from archc.dsl import ast
    from archc.dsl.parser import parse
    try:
        module = parse(text, name)
    except ArchError:
        return []
    return [field for item in module.items
            if isinstance(item, ast.Fields) and item.kind == "search" for field in item.fields]
