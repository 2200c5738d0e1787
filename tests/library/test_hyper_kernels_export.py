"""Hyper-kernel networks survive export: model.py (+ safetensors weights) and the torch.export
program, each run in a fresh `python -I` where archc cannot be imported, give the compiled
network's outputs (1-D and 2-D, global and local kernels, MIP on and off), for a batch size
other than the traced one."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

import archc
from archc.compiler.export import example_inputs_of, export

sys.path.insert(0, str(Path(__file__).parents[1] / "compiler"))
from test_export import run_fresh

SPECS = {
    "hk_signal": ("input signal: float[2, 12]",
                  "conv1d(out = 4, k = 3)\n"
                  "residual { hyperzzw(scope = \"local\", k = 3, hidden = 8, mip = true) }\n"
                  "terminator(bottleneck = 2, local_branches = 2, hidden = 8, mip = true)\n"
                  "hyperzzw(scope = \"global\", hidden = 8)\nclassifier(classes = 3)"),
    "hk_image": ("input image: float[1, 6, 5]",
                 "conv2d(out = 4, k = 3)\n"
                 "terminator(bottleneck = 1, local_branches = 1, hidden = 8, dropout = 0.2)\n"
                 "hyperzzw(scope = \"global\", hidden = 8, mip = true)\n"
                 "hyperzzw(scope = \"local\", k = 5, hidden = 4)\nclassifier(classes = 3)"),
}

def _compiled(name: str) -> tuple[archc.Space, torch.fx.GraphModule]:
    inputs, body = SPECS[name]
    space = archc.loads(f"space {name} {{\n{inputs}\n{body}\n}}\n", name=f"{name}.arch")
    torch.manual_seed(0)
    gm = archc.compile(space, space.sample(seed=0)).module
    gm(*example_inputs_of(gm, batch=4)).sum().backward()  # a training step's state
    return space, gm.eval()


@pytest.mark.parametrize("name", list(SPECS))
def test_export_gives_the_same_outputs_without_archc(name: str, tmp_path: Path) -> None:
    space, gm = _compiled(name)
    for kind in ("py", "pt2"):
        export(gm, space.name, space.sample(seed=0), tmp_path / kind, format=kind)
    inputs = example_inputs_of(gm, batch=3, seed=1)  # not the traced batch size (2)
    with torch.no_grad():
        want = gm(*inputs)
    class_name = "".join(part.title() for part in name.split("_"))
    [py] = run_fresh("py", tmp_path / "py", class_name, inputs, tmp_path)
    torch.testing.assert_close(py, want, rtol=0, atol=0)
    [pt2] = run_fresh("pt2", tmp_path / "pt2", "", inputs, tmp_path)
    torch.testing.assert_close(pt2, want, rtol=1e-6, atol=1e-6)
