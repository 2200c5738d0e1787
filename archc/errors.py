"""Spans, diagnostics and the ArchError family: the user's errors, rendered against the source.

Two kinds of error exist in archc (STYLE.md §5). An `ArchError` is the user's: it carries one or
more `Diagnostic`s that point at the spec, and the CLI prints them and exits 1 without a
traceback. Anything else is a bug in archc and keeps its traceback.

>>> src = Source("lm.arch", "space lm {\\n    mlpp(ratio = 4)\\n}\\n")
>>> d = Diagnostic("unknown block 'mlpp'", src.span(2, 5, 2, 9), hint="did you mean 'mlp'?")
>>> print(d.render())
lm.arch:2:5: error: unknown block 'mlpp'
  2 |     mlpp(ratio = 4)
    |     ^^^^
help: did you mean 'mlp'?
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

__all__ = [
    "Source", "Span", "Diagnostic", "ArchError", "ParseError", "CheckError", "PointError",
    "SpaceError", "did_you_mean",
]


@dataclass(frozen=True, eq=False)
class Source:
    """A spec's text and the name it is shown under (a path, or `<string>`)."""

    name: str
    text: str

    def line(self, number: int) -> str:
        """The 1-based line `number`, without its newline ('' past the end)."""
        lines = self.text.splitlines()
        return lines[number - 1] if 1 <= number <= len(lines) else ""

    def span(self, line: int, column: int, end_line: int | None = None,
             end_column: int | None = None) -> Span:
        """A span in this source; the end defaults to one character after the start."""
        return Span(self, line, column, end_line or line,
                    end_column if end_column is not None else column + 1)


@dataclass(frozen=True)
class Span:
    """A region of a source: 1-based line and column, end column exclusive (lark's convention)."""

    source: Source = field(repr=False, compare=False)
    line: int
    column: int
    end_line: int
    end_column: int

    @property
    def where(self) -> str:
        return f"{self.source.name}:{self.line}:{self.column}"

    def to(self, other: Span) -> Span:
        """The span from the start of `self` to the end of `other`."""
        return Span(self.source, self.line, self.column, other.end_line, other.end_column)


@dataclass(frozen=True)
class Diagnostic:
    """One message about the user's input: what is wrong, where, and how to fix it."""

    message: str
    span: Span | None = None
    hint: str | None = None
    notes: tuple[tuple[str, Span | None], ...] = ()
    severity: str = "error"

    def render(self) -> str:
        """Plain text: `file:line:col: error: …`, the source line, a caret run, then help."""
        where = f"{self.span.where}: " if self.span else ""
        out = [f"{where}{self.severity}: {self.message}"]
        if self.span:
            out += _excerpt(self.span)
        for text, span in self.notes:
            out.append(f"note: {span.where}: {text}" if span else f"note: {text}")
            if span:
                out += _excerpt(span)
        if self.hint:
            out.append(f"help: {self.hint}")
        return "\n".join(out)


def _excerpt(span: Span) -> list[str]:
    """The source line under a span and a caret run under the span (first line only)."""
    text = span.source.line(span.line).rstrip("\n").expandtabs(1)
    number = str(span.line)
    end = span.end_column if span.end_line == span.line else len(text) + 1
    width = max(1, min(end, len(text) + 1) - span.column)
    pad = " " * len(number)
    return [f"  {number} | {text}", f"  {pad} | {' ' * (span.column - 1)}{'^' * width}"]


class ArchError(Exception):
    """A user error: one or more diagnostics. The CLI prints them and exits 1."""

    kind = "error"

    def __init__(self, diagnostics: Diagnostic | Sequence[Diagnostic] | str,
                 span: Span | None = None, hint: str | None = None) -> None:
        if isinstance(diagnostics, str):
            diagnostics = [Diagnostic(diagnostics, span, hint)]
        elif isinstance(diagnostics, Diagnostic):
            diagnostics = [diagnostics]
        self.diagnostics: tuple[Diagnostic, ...] = tuple(diagnostics)
        super().__init__(self.render())

    def render(self) -> str:
        """Every diagnostic, rendered, separated by blank lines."""
        return "\n\n".join(d.render() for d in self.diagnostics)


class ParseError(ArchError):
    """The text is not a well-formed spec (the grammar rejected it)."""


class CheckError(ArchError):
    """The spec parses but means nothing valid: unknown names, wrong types, bad domains, …"""


class PointError(ArchError):
    """A point does not belong to a space: a missing, unknown, inactive or out-of-domain value."""


class SpaceError(ArchError):
    """A space cannot do what was asked: too large to enumerate, constraints unsatisfiable, …"""


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """A `did you mean 'x'?` hint for the closest candidate, or None when nothing is close.

    Close means similar spelling, or a candidate that is the first word of a longer name
    (`hyper_conection` → `hyper`).

    >>> did_you_mean("atention", ["attention", "mlp"])
    "did you mean 'attention'?"
    >>> did_you_mean("hyper_conection", ["hyper", "mlp"])
    "did you mean 'hyper'?"
    """
    pool = list(candidates)
    close = difflib.get_close_matches(name, pool, n=1, cutoff=0.6)
    if not close:
        head = name.split("_")[0]
        close = [c for c in pool if len(head) >= 3 and c == head]
    return f"did you mean '{close[0]}'?" if close else None
