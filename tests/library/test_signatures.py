"""Contract tests over every block signature in the library (no torch needed)."""

from __future__ import annotations

import doctest
import re
import subprocess
import sys
from collections.abc import Callable
from types import ModuleType

import pytest

import archc.library
from archc.dsl.signature import TYPES, Hyper, Signature
from archc.library import (
    REGISTRY,
    base,
    convolution,
    hyper_connections,
    hyper_kernels,
    looped,
    moe,
    phm,
    standard,
    transformer,
)

FAMILIES = (standard, transformer, convolution, hyper_connections, looped, hyper_kernels, moe,
            phm)
HYPER_FAMILY = (hyper_connections, looped, hyper_kernels, moe, phm)
KINDS = ("layer", "mix")
SNAKE = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)*")


def _declared_in(module: ModuleType) -> list[Signature]:
    """The signatures of the block classes defined in `module` itself."""
    found = (getattr(v, "signature", None) for v in vars(module).values()
             if isinstance(v, type) and v.__module__ == module.__name__)
    return [s for s in found if isinstance(s, Signature)]


def _id(item: object) -> str:
    if isinstance(item, (Signature, Hyper)):
        return item.name
    return getattr(item, "__name__", str(item))


SIGNATURES = sorted(REGISTRY.values(), key=lambda s: s.name)


def _params(keep: Callable[[Hyper], bool] = lambda p: True) -> list[tuple[Signature, Hyper]]:
    """(signature, hyperparameter) cases for every hyperparameter that `keep` accepts."""
    return [(s, p) for s in SIGNATURES for p in s.params if keep(p)]


def test_every_family_declares_blocks_and_every_block_is_registered() -> None:
    declared = [s for module in FAMILIES for s in _declared_in(module)]
    assert all(_declared_in(module) for module in FAMILIES)
    assert sorted(s.name for s in declared) == sorted(REGISTRY)
    assert all(REGISTRY[s.name] is s for s in declared)


@pytest.mark.parametrize("sig", SIGNATURES, ids=_id)
def test_block_is_documented_and_well_formed(sig: Signature) -> None:
    assert SNAKE.fullmatch(sig.name), "block names are snake_case"
    assert sig.doc, "every block has a doc"
    assert sig.kind in KINDS
    assert not (sig.body and sig.kind != "layer"), "only layers wrap a { } body"
    assert sig.inputs >= 1
    names = [p.name for p in sig.params]
    assert len(names) == len(set(names)), "hyperparameter names are unique within a block"


@pytest.mark.parametrize("sig", [s for m in HYPER_FAMILY for s in _declared_in(m)], ids=_id)
def test_hyper_family_blocks_cite_their_paper(sig: Signature) -> None:
    assert re.search(r"arXiv \d{4}\.\d{5}", sig.cite), sig.cite


@pytest.mark.parametrize(("sig", "param"), _params(), ids=_id)
def test_hyperparameter_is_well_formed(sig: Signature, param: Hyper) -> None:
    assert SNAKE.fullmatch(param.name)
    assert param.type in TYPES
    assert param.doc, "every hyperparameter has a one-line doc"
    assert not param.options or param.type == "str", "options are for strings"
    assert len(set(param.options)) == len(param.options)
    if param.low is not None or param.high is not None:
        assert param.type in ("int", "float"), "bounds are for numbers"
    if param.low is not None and param.high is not None:
        assert param.low < param.high
    assert not param.positive or param.low is not None, "positive means strictly above low"
    if param.type == "block":
        assert param.kind in KINDS


@pytest.mark.parametrize(("sig", "param"), _params(lambda p: not p.required and p.type != "block"),
                         ids=_id)
def test_default_lies_in_its_domain(sig: Signature, param: Hyper) -> None:
    assert param.problem(param.default) is None


@pytest.mark.parametrize(("sig", "param"), _params(lambda p: not p.required and p.type == "block"),
                         ids=_id)
def test_block_default_names_a_usable_block_of_its_kind(sig: Signature, param: Hyper) -> None:
    assert isinstance(param.default, str) and param.default in REGISTRY, param.default
    target = REGISTRY[param.default]
    assert target.kind == param.kind
    assert not target.body, "a default block cannot need a { } body"
    assert not [p.name for p in target.params if p.required], "a default block needs no arguments"


@pytest.mark.parametrize(("name", "first"), [
    ("linear", "out"), ("conv1d", "out"), ("conv2d", "out"), ("conv_bn_relu", "out"),
    ("dropout", "p"), ("embedding", "vocab"), ("attention", "heads"), ("mlp", "ratio"),
    ("classifier", "classes"), ("lm_head", "vocab"), ("activation", "fn"), ("loop", "times"),
    ("hyper", "streams"), ("moe", "experts"), ("phm_linear", "out"), ("mhc", "iters"),
])
def test_first_hyperparameter_is_the_positional_one(name: str, first: str) -> None:
    assert REGISTRY[name].params[0].name == first


def test_hyper_connection_mixes_and_body_blocks() -> None:
    assert {n for n, s in REGISTRY.items() if s.kind == "mix"} == {
        "hc", "mhc", "mhc_lite", "kromhc", "shc"}
    assert {n for n, s in REGISTRY.items() if s.body} == {"hyper", "loop", "residual"}


def test_declaring_a_block_twice_is_refused() -> None:
    table: dict[str, Signature] = {}
    base.block("twice", registry=table)(type("A", (), {"__doc__": "Once."}))
    with pytest.raises(ValueError, match="declared twice"):
        base.block("twice", registry=table)(type("B", (), {"__doc__": "Again."}))


@pytest.mark.parametrize("module", (archc.library, base, *FAMILIES), ids=_id)
def test_module_doctests(module: ModuleType) -> None:
    failed, _ = doctest.testmod(module, verbose=False)
    assert failed == 0


def test_importing_the_library_does_not_import_torch() -> None:
    code = "import archc.library, sys; assert 'torch' not in sys.modules, 'torch was imported'"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
