"""`charlm`: character-level language modelling on a text file.

The text is the task's data path, else `$ARCHC_CHARLM_TEXT`, else a default corpus that every
Python install carries offline: the standard library's `pydoc_data.topics` (the reference
manual's topic pages that `help()` shows, ~465,000 characters in 3.11), joined in sorted topic
order so it is the same text on every run.

Splits are contiguous: the first 90% of the characters train, the next 5% validate, the last
5% test, so no window of one split overlaps another. Each split is cut into consecutive
windows of `LENGTH + 1` characters sharing one character at each seam: a window's first
`LENGTH` characters are the input, its last `LENGTH` the targets (the next character at every
position). The vocabulary is every distinct character of the whole text, sorted (its size is
`task.vocab`); the context is `task.length` and binds the `t` of `input tokens: int[t]`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from archc.errors import ArchError
from archc.search.tasks_base import LM_METRICS, Split, Task

__all__ = ["charlm", "default_corpus", "LENGTH", "FRACTIONS"]

LENGTH = 128
"""Characters of context per example (`task.length`)."""
FRACTIONS = (0.9, 0.05, 0.05)
"""Train, val and test shares of the text, in that order along it."""


def default_corpus() -> str:
    """The standard library's pydoc topics, joined in sorted topic order."""
    from pydoc_data.topics import topics

    return "\n\n".join(topics[name] for name in sorted(topics))


def _read(data: str | None) -> tuple[str, str]:
    """The corpus text and where it came from."""
    path = data or os.environ.get("ARCHC_CHARLM_TEXT")
    if not path:
        return default_corpus(), "pydoc_data.topics"
    how = "the data path" if data else "$ARCHC_CHARLM_TEXT"
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace"), path
    except OSError as error:
        raise ArchError(f"cannot read the charlm text {path} ({how}): {error.strerror}",
                        hint="give a UTF-8 text file with --data, or unset "
                        "$ARCHC_CHARLM_TEXT to use the default corpus") from None


def _windows(ids: np.ndarray, length: int) -> Split:
    """Consecutive (input, next-character) windows of `length` over `ids`."""
    count = (len(ids) - 1) // length
    rows = ids[:count * length + 1]
    x = np.stack([rows[i * length:(i + 1) * length] for i in range(count)])  # (b, t)
    y = np.stack([rows[i * length + 1:(i + 1) * length + 1] for i in range(count)])  # (b, t)
    return torch.as_tensor(x, dtype=torch.int64), torch.as_tensor(y, dtype=torch.int64)


def charlm(data: str | None = None) -> Task:
    """The charlm task over `data` (a text file), `$ARCHC_CHARLM_TEXT` or the default corpus."""
    text, source = _read(data)
    vocab = sorted(set(text))
    index = {char: i for i, char in enumerate(vocab)}
    ids = np.fromiter((index[c] for c in text), dtype=np.int64, count=len(text))
    bounds = np.round(np.cumsum(FRACTIONS)[:-1] * len(ids)).astype(int)
    parts = np.split(ids, bounds)
    if min(len(part) for part in parts) < LENGTH + 1:
        raise ArchError(f"the charlm text {source} is too short: {len(text)} characters",
                        hint=f"each split needs {LENGTH + 1} characters, so the text at least "
                        f"{round((LENGTH + 1) / min(FRACTIONS))}")
    train, val, test = (_windows(part, LENGTH) for part in parts)
    return Task("charlm", {"vocab": len(vocab), "length": LENGTH}, {"t": LENGTH},
                train, val, test, loss="lm", metrics=LM_METRICS)
