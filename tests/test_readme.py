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
