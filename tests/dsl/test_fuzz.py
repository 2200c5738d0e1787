"""Fuzzing the front end: no input, however broken, may make `archc.loads` fail with anything
but an `ArchError` (STYLE.md §5: any other exception is our bug).

Inputs are valid seed specs (tests/dsl/fuzz_seeds/ and examples/) with a few random edits —
tokens or characters deleted, duplicated, swapped or inserted, the text cut short — plus soups
of random tokens and random programs built from the language's constructs (mostly ill-typed,
which is the point). Every generator is seeded, so a failure reproduces; the failing input is
printed. The default run is quick; `pytest -m slow` fuzzes >= 10,000 inputs.
"""

from __future__ import annotations

import contextlib
import random
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import archc
from archc.errors import ArchError

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parents[1] / "examples"
SEED_FILES = sorted(HERE.glob("fuzz_seeds/*.arch")) + sorted(EXAMPLES.glob("*.arch"))
SEEDS = [(p.read_text(encoding="utf-8"), p.parent) for p in SEED_FILES]

PUNCT = [*"(){}[],;=.:+-*/%<>\"'#\n ", "..", "...", "==", "//", "**", "\n\n", "\\\n", "@"]
WORDS = ["space", "def", "import", "train", "search", "input", "let", "require", "return",
         "repeat", "in", "share", "one_of", "optional", "true", "false", "and", "or", "not",
         "choice", "int", "float", "bool", "task", "concat", "maximize", "weights", "arch",
         "log", "step", "x", "d", "mlp", "linear", "hyper", "residual", "mhc", "loop", "relu",
         "attention", "moe", "task.vocab", "60s", "5 epochs", '"gelu"', '"\\q"']
NUMBERS = ["0", "1", "-1", "2.5", "1e9", "1e400", "99999999999999999999", "10**400",
           "2**2**2**2**2**2", "(-8)**0.5", "0.0", "1e-4", "3", "9" * 5000]
_TOKEN = re.compile(r'\s+|\w+|"[^"\n]*"|\.\.|==|//|\*\*|.')


# ── generators ───────────────────────────────────────────────────────────────────────────────


def mutate(rng: random.Random, text: str) -> str:
    """One to four random edits of `text`, at the level of tokens or characters."""
    toks = _TOKEN.findall(text) or [""]
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(len(toks))
        match rng.randrange(8):
            case 0:
                del toks[i]
            case 1:
                toks.insert(i, toks[i])
            case 2:
                j = rng.randrange(len(toks))
                toks[i], toks[j] = toks[j], toks[i]
            case 3:
                toks.insert(i, rng.choice(PUNCT))
            case 4:
                toks.insert(i, f" {rng.choice(WORDS + NUMBERS)} ")
            case 5:
                toks[i] = rng.choice(WORDS + NUMBERS + PUNCT)
            case 6:
                toks = toks[:i]
            case _:
                flat = "".join(toks)
                k = rng.randrange(len(flat) + 1)
                toks = _TOKEN.findall(flat[:k] + flat[k + 1:])
        toks = toks or [""]
    return "".join(toks)


def soup(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS + NUMBERS[:-1] + PUNCT) for _ in range(rng.randint(1, 40)))


_NAMES = ["x", "y", "d", "n", "f", "cell", "linear", "mlp", "attention", "hyper", "residual",
          "mhc", "hc", "moe", "loop", "relu", "identity", "zero", "conv_bn_relu", "dropout",
          "embedding", "classifier", "task", "choice", "int", "float", "bool", "concat",
          "one_of", "activation", "lm_head", "avg_pool"]
_KEYS = ["out", "heads", "ratio", "p", "mix", "streams", "iters", "expert", "fn", "times",
         "bias", "k", "step", "log", "c"]
_LITERALS = ["0", "1", "2", "8", "-1", "0.5", "1e-3", '"relu"', "true", "task.classes",
             "task.nope", "bool", "10**18", "(-8)", "1e308", "9223372036854775807"]
_OPS = ["+", "-", "*", "/", "//", "%", "**", "==", "<", ">=", "and", "or"]


def expr(rng: random.Random, depth: int = 0) -> str:
    """A random expression: literals, names, calls, domains, `one_of`, arithmetic."""
    kind = rng.randrange(11 if depth < 3 else 3)
    if kind == 0:
        return rng.choice(_LITERALS)
    if kind in (1, 2):
        return rng.choice(_NAMES)
    if kind == 3:
        return f"{rng.choice(_NAMES)}({args(rng, depth)})"
    if kind == 4:
        return f"choice({args(rng, depth)})"
    if kind == 5:
        step = rng.choice(["", ", step = 2", ", 0"])
        return f"int({expr(rng, depth + 1)}..{expr(rng, depth + 1)}{step})"
    if kind == 6:
        log = rng.choice(["", ", log"])
        return f"float({expr(rng, depth + 1)}..{expr(rng, depth + 1)}{log})"
    if kind == 7:
        return f"one_of({args(rng, depth)})"
    if kind == 8:
        return f"{expr(rng, depth + 1)} {rng.choice(_OPS)} {expr(rng, depth + 1)}"
    if kind == 9:
        return f"{rng.choice(['-', 'not '])}{expr(rng, depth + 1)}"
    return f"{rng.choice(_NAMES)}({args(rng, depth)})({args(rng, depth)})"


def args(rng: random.Random, depth: int) -> str:
    return ", ".join(f"{rng.choice(_KEYS)} = {expr(rng, depth + 1)}" if rng.random() < 0.4
                     else expr(rng, depth + 1) for _ in range(rng.randrange(4)))


def body(rng: random.Random, depth: int, indent: str) -> str:
    inner = "".join(f"{indent}    {stmt(rng, depth + 1, indent + '    ')}\n"
                    for _ in range(rng.randrange(4)))
    return "{\n" + inner + indent + "}"


def stmt(rng: random.Random, depth: int = 0, indent: str = "    ") -> str:
    """A random statement of a body."""
    kind = rng.randrange(12 if depth < 3 else 6)
    name = rng.choice(_NAMES)
    return [
        lambda: f"let {name} = {expr(rng)}",
        lambda: f"require {expr(rng)}",
        lambda: f"{name} = {expr(rng)}",
        lambda: expr(rng),
        lambda: f"return {expr(rng)}",
        lambda: f"input {name}: {rng.choice(['float', 'int', 'str'])}[{args(rng, 2)}]",
        lambda: f"{expr(rng)} {body(rng, depth, indent)}",
        lambda: f"one_of {rng.choice(['', 'm '])}{body(rng, depth, indent)}",
        lambda: f"optional {body(rng, depth, indent)}",
        lambda: (f"repeat {rng.choice(['', 'n in '])}{expr(rng)}"
                 f"{rng.choice(['', ' share = weights', ' share = arch', ' share = no'])} "
                 f"{body(rng, depth, indent)}"),
        lambda: body(rng, depth, indent),
        lambda: f"{name}({args(rng, 1)}) {body(rng, depth, indent)}",
    ][kind]()


def program(rng: random.Random) -> str:
    """A random file: a few defs, a space, maybe train and search blocks."""
    items = []
    for _ in range(rng.randrange(3)):
        params = rng.choice(["", "(c)", "(c = 4)", "(a, b)"])
        head = f"def {rng.choice(['f', 'cell', 'g'])}{params}"
        items.append(rng.choice([f"{head} = {expr(rng)}", f"{head} {body(rng, 0, '')}",
                                 f"{head}()({rng.choice(['x', 'x, y'])}) {body(rng, 0, '')}"]))
    first = "    input x: float[8, 16]\n" if rng.random() < 0.8 else ""
    stmts = "".join(f"    {stmt(rng)}\n" for _ in range(rng.randrange(1, 6)))
    items.append(f"space s {{\n{first}{stmts}}}")
    if rng.random() < 0.3:
        items.append(f"train {{ {rng.choice(['lr', 'batch', 'nope'])} = {expr(rng)} }}")
    if rng.random() < 0.2:
        items.append(f"search {{ {rng.choice(['trials', 'budget', 'objective'])} = {expr(rng)} }}")
    return "\n".join(items) + "\n"


def inputs(seed: int, count: int) -> Iterator[tuple[str, Path]]:
    """`count` fuzz inputs (text, import base): 70% edited seeds, 15% soups, 15% programs."""
    rng = random.Random(seed)
    for _ in range(count):
        roll = rng.random()
        if roll < 0.7:
            text, base = rng.choice(SEEDS)
            yield mutate(rng, text), base
        elif roll < 0.85:
            yield soup(rng), HERE
        else:
            yield program(rng), HERE


# ── the property ─────────────────────────────────────────────────────────────────────────────


class _Hang(Exception):
    pass


@contextlib.contextmanager
def _deadline(seconds: int) -> Iterator[None]:
    """Turn a hang into an exception (where the platform has SIGALRM)."""
    if not hasattr(signal, "SIGALRM"):
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise _Hang(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def load_or_user_error(text: str, base: Path = HERE) -> bool:
    """True if the text loads, False if it is a user error; anything else fails the test."""
    try:
        with _deadline(20):
            archc.loads(text, base=base)
        return True
    except ArchError:
        return False
    except Exception as err:  # any other exception is the bug being hunted
        shown = text if len(text) < 4000 else text[:4000] + "…"
        pytest.fail(f"{type(err).__name__}: {err}\n--- input ({len(text)} chars) ---\n{shown}",
                    pytrace=False)


def fuzz(seed: int, count: int) -> tuple[int, int]:
    loaded = 0
    for text, base in inputs(seed, count):
        loaded += load_or_user_error(text, base)
    return loaded, count - loaded


def test_seeds_load() -> None:
    assert SEED_FILES
    for path in HERE.glob("fuzz_seeds/*.arch"):
        assert load_or_user_error(path.read_text(), path.parent), path


def test_fuzz_quick() -> None:
    loaded, errors = fuzz(seed=0, count=400)
    assert errors > loaded > 0  # mostly broken, yet some edits keep a valid spec


@pytest.mark.slow
def test_fuzz_many(capsys: pytest.CaptureFixture[str]) -> None:
    start = time.perf_counter()
    total = loaded = 0
    for seed in range(1, 11):
        ok, bad = fuzz(seed=seed, count=1_000)
        total, loaded = total + ok + bad, loaded + ok
    with capsys.disabled():
        print(f"\nfuzzed {total:,} inputs in {time.perf_counter() - start:.0f} s: "
              f"{loaded:,} loaded, {total - loaded:,} user errors, no crash")
    assert total >= 10_000


# ── crashes found by fuzzing, kept as regressions ────────────────────────────────────────────

_SPACE = "space s {{\n    input x: float[8]\n    {}\n}}\n"

CRASHES = {
    # a huge constant, folded, then printed in a message: int → str over 4300 digits
    "huge-folded-int": _SPACE.format("linear(int(10**40016..64))"),
    # a 5000-digit literal: int(text) refused by Python, escaping the AST builder
    "huge-literal": _SPACE.format("linear(" + "9" * 5000 + ")"),
    # an escape Python's codec rejects, escaping the AST builder
    "bad-escape": _SPACE.format('activation(fn = "\\x")'),
    # folding 2 ** 2 ** … computed a number of 10**19728 digits (a hang)
    "tower-of-powers": _SPACE.format("linear(2 ** 2 ** 2 ** 2 ** 2 ** 2)"),
    # a complex root folded into a constant, then compared
    "complex-root": _SPACE.format("require (-8) ** 0.5 > 1"),
    # a repeat count range listed value by value to find its minimum (memory, then a hang)
    "huge-repeat-range": _SPACE.format("repeat int(1..10**12) { linear(4) }"),
    "repeat-range-past-ssize": _SPACE.format("repeat int(1..999999999999999999) { relu }"),
}


@pytest.mark.parametrize("name", sorted(CRASHES))
def test_crash_regressions(name: str) -> None:
    assert load_or_user_error(CRASHES[name]) is False
