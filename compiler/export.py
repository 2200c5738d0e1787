"""Export: a compiled network written out as plain PyTorch that runs without archc.

`export(gm, space, point, out_dir)` writes

| file                  | what                                                              |
|-----------------------|-------------------------------------------------------------------|
| `model.py`            | one class named after the space (`hc_lm` → `HcLm`); imports torch |
|                       | and the standard library only (see `export_code`)                 |
| `weights.safetensors` | its state dict, in safetensors: the standard weight format, safe  |
|                       | to load (no pickle) and memory-mapped                             |
| `point.json`          | the point the network was decoded from                            |

and `format="pt2"` writes `model.pt2`, a `torch.export` program, instead of the first two.

Tied weights (one module under two names) are stored once: safetensors refuses aliased
tensors, so the weights go through `safetensors.torch.save_model`, which keeps one name per
storage, and model.py's `from_pretrained` loads them back with `load_model`, which restores the
tie. Modules shared by `loop` and `share = weights` are one submodule of the graph already, so
their weights are stored once without any of this.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import fx

from archc.compiler.export_code import WEIGHTS, check_rebuild, model_source
from archc.compiler.export_sources import ExportError
from archc.compiler.lower import class_name as space_class_name

__all__ = ["FORMATS", "export", "write_py", "write_pt2", "example_inputs_of", "ExportError"]

FORMATS = ("py", "pt2")
"""`py`: model.py + weights.safetensors; `pt2`: a torch.export program."""


def export(gm: fx.GraphModule, space_name: str, point: Mapping[str, Any], out_dir: str | Path,
           format: str = "py", example_inputs: Sequence[torch.Tensor] | None = None
           ) -> list[Path]:
    """Write the network `gm` of space `space_name` at `point` into `out_dir` (created if
    needed) and return the files written. `example_inputs` (pt2 only) are batched inputs to
    trace with; by default they are made from the graph's input types."""
    if format not in FORMATS:
        raise ValueError(f"unknown export format {format!r}; choose one of {FORMATS}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = write_py(gm, space_name, out) if format == "py" else \
        [write_pt2(gm, out, example_inputs)]
    point_file = out / "point.json"
    point_file.write_text(json.dumps(dict(point), indent=2) + "\n", encoding="utf-8")
    return [*files, point_file]


def write_py(gm: fx.GraphModule, space_name: str, out: Path) -> list[Path]:
    """model.py and weights.safetensors; model.py is imported and checked before returning."""
    from safetensors.torch import save_model  # here: only this format needs it

    class_name = space_class_name(space_name)
    model, weights = out / "model.py", out / WEIGHTS
    model.write_text(model_source(gm, space_name, class_name), encoding="utf-8")
    check_rebuild(model, gm, class_name)
    save_model(gm, str(weights), metadata={"format": "pt", "space": space_name})
    weights.chmod(model.stat().st_mode & 0o777)  # safetensors writes 0600; ship like model.py
    return [model, weights]


def write_pt2(gm: fx.GraphModule, out: Path,
              example_inputs: Sequence[torch.Tensor] | None = None) -> Path:
    """model.pt2: `gm` traced by torch.export in eval mode (dropout off, batchnorm on its
    running statistics) — an inference program. The batch axis is left to torch.export to keep
    dynamic where the model allows (`Dim.AUTO`, torch ≥ 2.6; static before)."""
    inputs = tuple(example_inputs) if example_inputs is not None else example_inputs_of(gm)
    auto = getattr(torch.export.Dim, "AUTO", None)
    dynamic = tuple({0: auto} for _ in inputs) if auto is not None else None
    training = gm.training
    try:
        program = torch.export.export(gm.eval(), inputs, dynamic_shapes=dynamic)
    finally:
        gm.train(training)
    path = out / "model.pt2"
    torch.export.save(program, str(path))
    return path


def example_inputs_of(gm: fx.GraphModule, batch: int = 2, seed: int = 0
                      ) -> tuple[torch.Tensor, ...]:
    """A batch for each graph input, from the input types that lowering records
    (`meta["type"]`): standard normal floats, token ids 0."""
    generator = torch.Generator().manual_seed(seed)
    inputs = []
    for node in gm.graph.nodes:
        if node.op != "placeholder":
            continue
        kind = node.meta.get("type")
        if kind is None:
            raise ValueError(f"input {node.name!r} has no recorded type: pass example_inputs")
        shape = (batch, *kind.shape)
        inputs.append(torch.zeros(shape, dtype=torch.long) if kind.dtype == "int" else
                      torch.randn(shape, generator=generator))
    return tuple(inputs)
