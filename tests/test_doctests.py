"""Every docstring example in the package runs (STYLE: docstrings show a short example)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import archc
import archc.compiler
import archc.dsl
import archc.library
import archc.search


def _modules() -> list[str]:
    names = ["archc", "archc.errors"]
    for package in (archc.dsl, archc.library, archc.compiler, archc.search):
        names += [f"{package.__name__}.{m.name}" for m in pkgutil.iter_modules(package.__path__)]
    return names


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} doctest(s) failed in {name}"
