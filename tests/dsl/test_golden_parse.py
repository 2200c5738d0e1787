"""Golden syntax trees: each `golden/parse/NAME.arch` parses to the tree dumped in `NAME.txt`.

The dump is an indented outline written here (not `repr`), one node per line with its span, so
a change in the grammar or the AST builder shows up as a readable diff. After an intended
change, `pytest --update-golden` rewrites the .txt files; read the diff.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from archc.dsl import ast
from archc.dsl.parser import parse, parse_file

REPO = Path(__file__).resolve().parents[2]
CASES = sorted((Path(__file__).resolve().parent / "golden" / "parse").glob("*.arch"))


def dump(node: object, depth: int = 0) -> list[str]:
    """`Kind@line:col-line:col field=scalar …`, then each child field on its own lines."""
    pad = "  " * depth
    if not isinstance(node, ast.Node):
        return [f"{pad}{node!r}"]
    scalars, children = [], []
    for f in dataclasses.fields(node):
        if not f.compare:  # the span, a number's spelling, a module's comments
            continue
        value = getattr(node, f.name)
        if isinstance(value, ast.Node | tuple):
            children.append((f.name, value))
        else:
            scalars.append(f"{f.name}={value!r}")
    span = node.span
    where = f"@{span.line}:{span.column}-{span.end_line}:{span.end_column}" if span else ""
    out = [f"{pad}{type(node).__name__}{where} {' '.join(scalars)}".rstrip()]
    for name, value in children:
        if isinstance(value, tuple):
            out.append(f"{pad}  {name}: ({len(value)})")
            for item in value:
                out += dump(item, depth + 2)
        else:
            out.append(f"{pad}  {name}:")
            out += dump(value, depth + 2)
    return out


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_golden_parse(path: Path, golden) -> None:
    module = parse_file(path)
    golden(path.with_suffix(".txt"), "\n".join(dump(module)) + "\n")


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_layout_does_not_change_the_tree(path: Path) -> None:
    """Spans aside, the tree ignores layout: the same spec on fewer, longer lines is equal."""
    text = path.read_text()
    assert parse(text) == parse(text.replace("\n\n", "\n"), "other-name")


def test_there_are_cases() -> None:
    assert len(CASES) >= 3


def test_strings_keep_their_text() -> None:
    """Non-ASCII text is kept as written (it was once decoded twice, `é` becoming `Ã©`); the
    escapes are `\\n`, `\\t`, `\\"` and `\\\\`."""
    module = parse('space s {\n let a = "é → ü"\n let b = "a\\tb\\"c\\\\"\n}\n')
    lets = module.items[0].body.stmts
    assert [let.value.value for let in lets] == ["é → ü", 'a\tb"c\\']
