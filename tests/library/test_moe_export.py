"""moe and PHM layers survive both exports: model.py (+ safetensors) and the torch.export
program, each run in a fresh `python -I` where archc cannot be imported, give the compiled
network's outputs; the aux-loss channel keeps no state an exported program would need."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

import archc
from archc.compiler.export import example_inputs_of, export

sys.path.insert(0, str(Path(__file__).parents[1] / "compiler"))
from test_export import run_fresh

SPEC = """space routed {
    input tokens: int[8]
    embedding(vocab = 13, dim = 16)
    residual { layernorm
               moe(experts = 4, top_k = 2, expert = mlp(ratio = 2), capacity = CAPACITY,
                   gate = "sqrt", shared = true) }
    residual { moe(experts = 3, top_k = 1, expert = phm_linear(16, n = 4), noise = true) }
    phm_linear(8, n = 2)
    lm_head(13)
}
"""

@pytest.mark.parametrize("capacity", [1.25, pytest.param(0.0, marks=pytest.mark.slow)])
def test_a_routed_network_exports_and_runs_without_archc(capacity: float,
                                                         tmp_path: Path) -> None:
    space = archc.loads(SPEC.replace("CAPACITY", str(capacity)), name="routed.arch")
    torch.manual_seed(0)
    gm = archc.compile(space, {}).module
    gm(example_inputs_of(gm, batch=2, seed=0)[0])  # a training forward leaves its aux loss
    gm.eval()
    for kind in ("py", "pt2"):
        export(gm, space.name, {}, tmp_path / kind, format=kind)
    inputs = example_inputs_of(gm, batch=3, seed=1)  # not the traced batch size (2)
    with torch.no_grad():
        want = gm(*inputs)
    for kind, class_name in (("pt2", ""), ("py", "Routed")):
        [got] = run_fresh(kind, tmp_path / kind, class_name, inputs, tmp_path)
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)
