"""Imports only go downward (STYLE.md §1): checking a spec needs neither torch nor optuna.

Each check runs in a fresh interpreter, so modules imported by other tests do not hide a leak.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SPEC = Path(__file__).resolve().parent / "dsl" / "fuzz_seeds" / "lm.arch"


def run_fresh(code: str) -> str:
    """Run `code` in a new interpreter; its stdout (fails the test with stderr on error)."""
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_checking_a_spec_does_not_import_torch() -> None:
    out = run_fresh(f"""
        import sys
        import archc, archc.dsl.check, archc.library
        space = archc.load({str(SPEC)!r})
        point = space.sample(seed=0)
        space.validate(point)
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "optuna"))
        print(space.size, heavy)
    """)
    size, heavy = out.split(maxsplit=1)
    assert int(size) > 1
    assert heavy.strip() == "[]", f"checking a spec imported {heavy}"


def test_the_language_package_does_not_import_optuna_or_torch() -> None:
    out = run_fresh("""
        import importlib, pkgutil, sys
        import archc.dsl
        for info in pkgutil.iter_modules(archc.dsl.__path__):
            importlib.import_module(f"archc.dsl.{info.name}")
        print(sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "optuna")))
    """)
    assert out.strip() == "[]", f"archc.dsl imported {out.strip()}"
