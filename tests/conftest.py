"""Shared test options and fixtures.

`pytest --update-golden` rewrites golden files (tests/**/golden/…) from the current output
instead of comparing against them; review the diff before committing it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true", default=False,
                     help="rewrite golden files from the current output instead of comparing")


@pytest.fixture
def golden(request: pytest.FixtureRequest) -> Callable[[Path, str], None]:
    """`golden(path, text)`: `text` must equal the file at `path` (rewritten instead under
    `--update-golden`)."""
    update = request.config.getoption("--update-golden")

    def compare(path: Path, text: str) -> None:
        if update:
            path.write_text(text, encoding="utf-8")
            return
        if not path.exists():
            pytest.fail(f"no golden file {path}; run `pytest --update-golden` to write it")
        assert text == path.read_text(encoding="utf-8"), (
            f"output differs from {path}; if the change is intended, run "
            "`pytest --update-golden` and review the diff")

    return compare
