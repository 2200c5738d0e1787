"""The README's Python example runs as written, from the repository root."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_readme_python_example_runs(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    text = (ROOT / "README.md").read_text()
    (snippet,) = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    monkeypatch.chdir(ROOT)
    exec(compile(snippet, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "15625" in out and "def forward(self, image)" in out


def test_readme_spec_checks() -> None:
    import archc
    text = (ROOT / "README.md").read_text()
    (spec,) = re.findall(r"```arch\n(.*?)```", text, flags=re.S)
    assert archc.loads(spec, name="README.md").architecture().size == 585_144


def test_readme_main_command_parses() -> None:
    """Every `archc …` step of the main command names a real command with valid options (the
    search itself is measured by hand: README gives the figures)."""
    import shlex

    import typer

    from archc.cli import app

    text = (ROOT / "README.md").read_text()
    main = re.findall(r"```sh\n(.*?)```", text, flags=re.S)[0].strip()
    steps = [shlex.split(step) for step in main.split("&&")]
    archc_steps = [step[1:] for step in steps if step[0] == "archc"]
    assert [step[0] for step in archc_steps] == ["search", "evaluate", "export"]
    group = typer.main.get_command(app)
    for name, *args in archc_steps:
        command = group.get_command(group.make_context("archc", [name]), name)
        command.make_context(name, list(args))  # raises on an unknown option or bad value
    assert (ROOT / archc_steps[0][1]).is_file()
