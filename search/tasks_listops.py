"""`listops`: a synthetic long-sequence classification task in the style of ListOps.

ListOps (Nangia & Bowman, NAACL SRW 2018; the Long Range Arena version, Tay et al., ICLR 2021)
asks for the value of a nested prefix expression over digits, e.g.
`[MAX 2 9 [MIN 4 7 ] 0 ]` → 9. The answer hangs on tokens far apart, so it rewards models that
route information over long ranges. The generator here is archc's own, seeded and offline:

- An expression is an operator node with 2–`MAX_ARGS` arguments; each argument is a digit, or,
  with probability `NEST` while the depth is below `MAX_DEPTH`, another operator node.
- Operators: MAX, MIN, MED (the upper median: the middle of the sorted arguments, the higher of
  the two middles for an even count), SM (the sum modulo 10). The label is the value, 0–9.
- Tokens: 0 padding, 1–10 the digits 0–9, 11–14 `[MAX` `[MIN` `[MED` `[SM`, 15 `]`
  (`task.vocab` = 16). Expressions of `MIN_TOKENS` to `LENGTH` tokens are kept, padded at the
  end to `LENGTH` (`task.length`, binding the `t` of `input tokens: int[t]`).
- One `random.Random` seeded with `SEED` (Python's Mersenne Twister, the same sequence on every
  platform and version) draws expressions until `SIZES` distinct ones exist
  (a repeat is skipped), then they are cut in order into train, val and test: disjoint, and the
  same on every machine.
"""

from __future__ import annotations

import random

import numpy as np
import torch

from archc.search.tasks_base import Task, no_data

__all__ = ["listops", "generate", "value", "LENGTH", "SIZES", "SEED", "VOCAB"]

LENGTH, MIN_TOKENS = 256, 64
MAX_ARGS, MAX_DEPTH, NEST = 6, 6, 0.35
SIZES = (4000, 1000, 1000)
SEED = 0
PAD, CLOSE = 0, 15
OPERATORS = {11: "MAX", 12: "MIN", 13: "MED", 14: "SM"}
VOCAB = 16
_OPERATOR_TOKENS = tuple(OPERATORS)

Expr = int | tuple[int, list["Expr"]]
"""A digit 0–9, or (operator token, arguments)."""


def _draw(rng: random.Random, depth: int) -> Expr:
    arguments: list[Expr] = []
    for _ in range(rng.randint(2, MAX_ARGS)):
        if depth < MAX_DEPTH and rng.random() < NEST:
            arguments.append(_draw(rng, depth + 1))
        else:
            arguments.append(rng.randrange(10))
    return rng.choice(_OPERATOR_TOKENS), arguments


def value(expr: Expr) -> int:
    """The value of an expression, 0–9."""
    if isinstance(expr, int):
        return expr
    operator, arguments = expr
    values = sorted(value(a) for a in arguments)
    match OPERATORS[operator]:
        case "MAX":
            return values[-1]
        case "MIN":
            return values[0]
        case "MED":
            return values[len(values) // 2]
    return sum(values) % 10


def tokens(expr: Expr) -> list[int]:
    """The token ids of an expression, unpadded."""
    if isinstance(expr, int):
        return [expr + 1]
    operator, arguments = expr
    return [operator, *(t for a in arguments for t in tokens(a)), CLOSE]


def generate(count: int, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """`count` distinct expressions as (count, LENGTH) padded token ids and their values."""
    rng = random.Random(seed)
    seen: set[tuple[int, ...]] = set()
    rows: list[tuple[int, ...]] = []
    labels: list[int] = []
    while len(rows) < count:
        expr = _draw(rng, 1)
        ids = tuple(tokens(expr))
        if not MIN_TOKENS <= len(ids) <= LENGTH or ids in seen:
            continue
        seen.add(ids)
        rows.append(ids + (PAD,) * (LENGTH - len(ids)))
        labels.append(value(expr))
    return np.array(rows, dtype=np.int64), np.array(labels, dtype=np.int64)


def listops(data: str | None = None) -> Task:
    """The listops task: SIZES train/val/test expressions from one seeded generator."""
    no_data("listops", data)
    x, y = generate(sum(SIZES))
    cuts = np.cumsum(SIZES)[:-1]
    train, val, test = ((torch.as_tensor(a), torch.as_tensor(b))
                        for a, b in zip(np.split(x, cuts), np.split(y, cuts), strict=True))
    return Task("listops", {"classes": 10, "vocab": VOCAB, "length": LENGTH}, {"t": LENGTH},
                train, val, test)
