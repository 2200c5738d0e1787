"""Golden diagnostics: every `golden/errors/NN_name.arch` is a bad spec, and `NN_name.txt` is
exactly what `archc check` prints for it (paths relative to the repository root).

Files under `golden/errors/lib/` are helpers that cases import, not cases. After an intended
change of wording, `pytest --update-golden` rewrites the .txt files; read the diff.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import archc
from archc.errors import ArchError

REPO = Path(__file__).resolve().parents[2]
CASES_DIR = Path(__file__).resolve().parent / "golden" / "errors"
CASES = sorted(CASES_DIR.glob("*.arch"))

_WHERE = re.compile(r"^\S+\.arch:\d+:\d+: error: ", re.MULTILINE)
_CARETS = re.compile(r"^ +\d* +\| *\^+$", re.MULTILINE)


def render(path: Path) -> str:
    """What loading the case prints, as the CLI would: the error's rendering."""
    with pytest.raises(ArchError) as info:
        archc.load(path.relative_to(REPO).as_posix())
    return info.value.render() + "\n"


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_golden_error(path: Path, golden, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    text = render(path)
    assert _WHERE.search(text), "a diagnostic names its file:line:col"
    assert _CARETS.search(text), "a diagnostic underlines its span"
    assert f"{path.relative_to(REPO).as_posix()}:" in text or "lib/" in text
    golden(path.with_suffix(".txt"), text)


def test_enough_cases_and_no_orphans() -> None:
    assert len(CASES) >= 35
    names = [p.name for p in CASES]
    assert all(re.fullmatch(r"\d\d_[a-z0-9_]+\.arch", n) for n in names), names
    orphans = {p.stem for p in CASES_DIR.glob("*.txt")} - {p.stem for p in CASES}
    assert not orphans, f"golden output without a case: {sorted(orphans)}"


def test_several_errors_are_reported_together(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    text = render(CASES_DIR / "59_several_errors.arch")
    assert len(_WHERE.findall(text)) >= 4


def test_cli_prints_each_golden_case_and_exits_1(monkeypatch: pytest.MonkeyPatch) -> None:
    """`archc check` on every case: exit status 1, the golden text on stderr, no traceback.
    (In process through typer's runner; tests/test_cli.py runs the real executable.)"""
    from typer.testing import CliRunner

    from archc.cli import app

    monkeypatch.chdir(REPO)
    runner = CliRunner()
    for path in CASES:
        result = runner.invoke(app, ["check", path.relative_to(REPO).as_posix()])
        assert result.exit_code == 1, (path.name, result.output)
        assert result.exception is None or isinstance(result.exception, SystemExit), path.name
        assert "Traceback" not in result.output, path.name
        assert result.stderr == path.with_suffix(".txt").read_text(), path.name
