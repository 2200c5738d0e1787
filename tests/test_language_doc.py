"""docs/language.md is checked: every ```arch block is a complete spec that loads, unless a
```text block follows it, in which case loading it fails with exactly that diagnostic.

Blocks whose info string names a file (```arch a.arch) form a multi-file case: they are written
to a directory and the first is loaded. After a deliberate change to a message, regenerate the
pasted diagnostics with `python tests/test_language_doc.py` and review the diff.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

import archc

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "language.md"
EXAMPLES = ROOT / "examples"
SPEC_NAME = "spec.arch"
POINT_HEADING = "### Point errors"
BAD_POINT = {"d": 128, "layers": 1, "layers[0].mlp.ratio": 3, "layers[1].mlp.ratio": 2,
             "hedas": 4}


@dataclass
class Block:
    lang: str
    info: str
    text: str
    start: int  # index of the opening fence line
    end: int  # index of the closing fence line


def blocks(lines: list[str]) -> list[Block]:
    out: list[Block] = []
    i = 0
    while i < len(lines):
        match = re.match(r"^```(\w*)\s*(.*)$", lines[i])
        if match is None:
            i += 1
            continue
        j = i + 1
        while lines[j] != "```":
            j += 1
        out.append(Block(match[1], match[2].strip(), "\n".join(lines[i + 1:j]) + "\n", i, j))
        i = j + 1
    return out


def _adjacent(lines: list[str], a: Block, b: Block) -> bool:
    return all(not line.strip() for line in lines[a.end + 1:b.start])


def cases(lines: list[str]) -> list[tuple[list[Block], Block | None]]:
    """(the spec's files, the diagnostic block after them or None) for every arch case."""
    found = blocks(lines)
    out: list[tuple[list[Block], Block | None]] = []
    i = 0
    while i < len(found):
        block = found[i]
        if block.lang != "arch":
            i += 1
            continue
        files = [block]
        while block.info and i + 1 < len(found) and found[i + 1].lang == "arch" \
                and found[i + 1].info and _adjacent(lines, files[-1], found[i + 1]):
            i += 1
            files.append(found[i])
        after = found[i + 1] if i + 1 < len(found) else None
        if after is not None and (after.lang != "text" or not _adjacent(lines, files[-1], after)):
            after = None
        out.append((files, after))
        i += 1
    return out


def run(files: list[Block]) -> str | None:
    """Load the case as `archc check` would, from the spec's own folder (next to copies of the
    examples, which it may import); the rendered error, or None if it loads."""
    named = [(f.info or SPEC_NAME, f.text) for f in files]
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp).resolve()
        for example in EXAMPLES.glob("*.arch"):
            shutil.copy(example, folder)
        for name, text in named:
            (folder / name).write_text(text)
        os.chdir(folder)
        try:
            archc.load(named[0][0])
        except archc.ArchError as err:  # imported files are shown by absolute path
            return err.render().replace(f"{folder}/", "")
        finally:
            os.chdir(cwd)
    return None


def point_error(lines: list[str]) -> tuple[Block, Block]:
    """The spec and the diagnostic of the "Point errors" section."""
    start = lines.index(POINT_HEADING)
    spec, diagnostic = [b for b in blocks(lines) if b.start > start][:2]
    return spec, diagnostic


def render_point_error(spec: Block) -> str:
    space = archc.loads(spec.text, name="lm.arch")
    with pytest.raises(archc.PointError) as err:
        space.validate(BAD_POINT)
    return err.value.render()


LINES = DOC.read_text().splitlines()
CASES = cases(LINES)


@pytest.mark.parametrize("files, diagnostic", CASES,
                         ids=[f"line{files[0].start + 1}" for files, _ in CASES])
def test_doc_spec(files: list[Block], diagnostic: Block | None):
    rendered = run(files)
    if diagnostic is None:
        assert rendered is None, f"a doc example fails to load:\n{rendered}"
    else:
        assert rendered is not None, "a doc example of an error loads without error"
        assert rendered + "\n" == diagnostic.text


def test_doc_point_error():
    spec, diagnostic = point_error(LINES)
    assert render_point_error(spec) + "\n" == diagnostic.text


def test_doc_has_errors_of_every_kind():
    text = DOC.read_text()
    for message in ("missing `)`", "missing `}`", "missing `=`", "stray comma",
                    "unknown keyword", "a comparison uses `==`", "did you mean", "no parameter",
                    "outside its domain", "positional argument", "defined twice",
                    "cyclic def", "cyclic import", "cannot import", "empty choice",
                    "no point satisfies"):
        assert message in text


def update() -> None:
    """Rewrite every pasted diagnostic (and fill `<<DIAG>>` placeholders) from a real run."""
    lines = DOC.read_text().splitlines()
    edits: list[tuple[int, int, list[str]]] = []  # replace lines[a:b] with new lines
    for files, diagnostic in cases(lines):
        rendered = run(files)
        if diagnostic is not None:
            if rendered is None:
                raise SystemExit(f"line {files[0].start + 1}: the spec loads now")
            edits.append((diagnostic.start, diagnostic.end + 1,
                          ["```text", *rendered.splitlines(), "```"]))
        elif rendered is not None:
            after = files[-1].end + 1
            while after < len(lines) and not lines[after].strip():
                after += 1
            if after < len(lines) and lines[after] == "<<DIAG>>":
                edits.append((after, after + 1, ["```text", *rendered.splitlines(), "```"]))
            else:
                raise SystemExit(f"line {files[0].start + 1}: fails to load:\n{rendered}")
    spec, diagnostic = point_error(lines)
    rendered = render_point_error(spec)
    edits.append((diagnostic.start, diagnostic.end + 1,
                  ["```text", *rendered.splitlines(), "```"]))
    for a, b, new in sorted(edits, reverse=True):
        lines[a:b] = new
    DOC.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    update()
    sys.exit(0)
