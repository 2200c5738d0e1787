"""`archc fmt`: canonical output that parses back to the same tree, is stable, keeps comments."""

from __future__ import annotations

from pathlib import Path

import pytest

from archc import format_spec
from archc.dsl.parser import parse

ROOT = Path(__file__).resolve().parents[2]
SPECS = sorted((ROOT / "examples").glob("*.arch")) + sorted(
    (ROOT / "benchmarks" / "specs").glob("*.arch"))


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_fmt_round_trips_and_is_idempotent(path: Path) -> None:
    text = path.read_text()
    once = format_spec(text)
    assert parse(once) == parse(text)
    assert format_spec(once) == once


def test_fmt_keeps_comments_in_place() -> None:
    text = ("# head\nspace s {  # opens\n  input x: float[4]\n  # before linear\n"
            "  linear(8) # out\n}\n")
    out = format_spec(text)
    assert out == (
        "# head\n"
        "space s {  # opens\n"
        "    input x: float[4]\n"
        "    # before linear\n"
        "    linear(8)  # out\n"
        "}\n"
    )


@pytest.mark.parametrize("expr", [
    "a - (b - c)", "(a + b) * c", "a ** b ** c", "(a ** b) ** c", "-(a + b)", "not (a and b)",
    "a or b and c", "(a or b) and c", "(a < b) == c", "d // heads % 2", "2 * -3",
])
def test_expressions_keep_their_meaning(expr: str) -> None:
    text = f"space s {{\n    input x: float[4]\n    let v = {expr}\n}}\n"
    out = format_spec(text)
    assert parse(out) == parse(text)
    assert f"let v = {expr}" in out  # already canonical: printed exactly as written


def test_long_calls_wrap_one_argument_per_line() -> None:
    args = ", ".join(f"option_{i} = conv_bn_relu(k = {i})" for i in range(1, 6))
    text = f"def op = one_of({args})\nspace s {{\n    input x: float[4]\n    op\n}}\n"
    out = format_spec(text)
    assert "def op = one_of(\n    option_1 = conv_bn_relu(k = 1),\n" in out
    assert all(len(line) <= 99 for line in out.splitlines())
    assert parse(out) == parse(text)
