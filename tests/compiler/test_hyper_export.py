"""Hyper-connected networks exported: model.py (run in a fresh Python where archc cannot be
imported) gives exactly the compiled module's outputs, for every mix, the head collapse and
Hyperloop; the .pt2 program too. The weights are randomised first, so the test does not pass
on an identity-like initialisation alone."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

import archc
from archc.compiler.export import example_inputs_of, export

sys.path.insert(0, str(Path(__file__).parent))
from test_export import run_fresh

BODY = """
        residual { rmsnorm; attention(heads = 2, causal = true, rope = true) }
        residual { rmsnorm; mlp(ratio = 2) }"""

SPECS = {
    "hc": "hyper(streams = 3, mix = hc) {{{body}\n    }}",
    "hc_dynamic": "hyper(streams = 2, mix = hc(dynamic = true)) {{{body}\n    }}",
    "mhc_head": "hyper(streams = 4, mix = mhc(iters = 7), collapse = \"head\") {{{body}\n    }}",
    "mhc_lite": "hyper(streams = 3, mix = mhc_lite) {{{body}\n    }}",
    "kromhc": "hyper(streams = 4, mix = kromhc) {{\n        loop(times = 2) {{{body}\n    }}"
              "\n    }}",
    "shc": "hyper(streams = 2, mix = shc) {{{body}\n    }}",
    "hyperloop": "hyperloop(begin = layer, middle = layer, end = layer, loops = 3, streams = 2, "
                 "mix = mhc(iters = 5), share_mix = false, collapse = \"head\")",
}


def compiled(name: str) -> archc.Compiled:
    net = SPECS[name].format(body=BODY)
    text = (f"space {name} {{\n    input tokens: int[6]\n    embedding(vocab = 11, dim = 8)\n"
            f"    {net}\n    rmsnorm\n    lm_head(11)\n}}\ndef layer() {{{BODY}\n}}\n")
    built = archc.compile(archc.loads(text, name=f"{name}.arch"), {})
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for param in built.module.parameters():
            param.copy_(0.3 * torch.randn(param.shape, generator=generator))
    built.module.eval()
    return built


def tokens(batch: int) -> tuple[torch.Tensor]:
    return (torch.randint(0, 11, (batch, 6), generator=torch.Generator().manual_seed(1)),)


_RUN_ALL = """
import importlib.util, sys
sys.modules["archc"] = None  # the export must stand alone: `import archc` fails here
import torch
inputs_file, out_file, *exports = sys.argv[1:]
inputs, outputs = torch.load(inputs_file), []
for directory, class_name in zip(exports[::2], exports[1::2]):
    spec = importlib.util.spec_from_file_location("model_" + class_name, directory + "/model.py")
    model = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(model)
    with torch.no_grad():
        outputs.append(getattr(model, class_name).from_pretrained().eval()(*inputs))
torch.save(outputs, out_file)
assert not [m for m in sys.modules if m.startswith("archc.")], "archc was imported"
"""


def test_model_py_equals_the_compiled_module_exactly(tmp_path: Path) -> None:
    """Every spec exported, then all loaded in one fresh `python -I` (one torch import)."""
    inputs, wants, exports = tokens(3), [], []
    for name in SPECS:
        built = compiled(name)
        export(built.module, name, built.point, tmp_path / name)
        source = (tmp_path / name / "model.py").read_text()
        assert "import archc" not in source and "class Connection" in source
        with torch.no_grad():
            wants.append(built.module(*inputs))
        exports += [str(tmp_path / name), built.module.__class__.__name__]
    torch.save(inputs, tmp_path / "inputs.pt")
    done = subprocess.run([sys.executable, "-I", "-c", _RUN_ALL, str(tmp_path / "inputs.pt"),
                           str(tmp_path / "outputs.pt"), *exports], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    for name, got, want in zip(SPECS, torch.load(tmp_path / "outputs.pt"), wants, strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=0, msg=name)


def test_the_modules_literal_defaults_are_the_declared_ones() -> None:
    """model.py copies Connection with its literal table of mix defaults: it must agree with
    the signatures the spec is checked against."""
    from archc.library.hyper_connections import MIX_BLOCKS
    from archc.library.hyper_connections_modules import MIX_DEFAULTS
    declared = {mix: {p.name: p.default for p in cls.signature.params}  # type: ignore[attr-defined]
                for mix, cls in MIX_BLOCKS.items()}
    assert declared == MIX_DEFAULTS


def test_the_pt2_program_equals_the_compiled_module(tmp_path: Path) -> None:
    """One program (torch.export takes seconds): Hyperloop with mhc and the head collapse."""
    name = "hyperloop"
    built = compiled(name)
    export(built.module, name, built.point, tmp_path / "pt2", format="pt2",
           example_inputs=example_inputs_of(built.module))
    inputs = tokens(3)
    with torch.no_grad():
        want = built.module(*inputs)
    [got] = run_fresh("pt2", tmp_path / "pt2", "", inputs, tmp_path)
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)
