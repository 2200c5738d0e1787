"""The `archc` command end to end: output, exit codes, and no tracebacks for user errors."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from archc.dsl.parser import parse

ROOT = Path(__file__).resolve().parent.parent
NB201 = """\
def op = one_of(none = zero, skip = identity, conv1 = conv_bn_relu(k = 1),
                conv3 = conv_bn_relu(k = 3), pool = avg_pool(k = 3))
def cell()(x) {
    n1 = op(x)
    n2 = op(x) + op(n1)
    return op(x) + op(n1) + op(n2)
}
space nb201 {
    input image: float[3, 32, 32]
    let nb_cell = cell
    conv_bn_relu(16, k = 3)
    repeat 5 { nb_cell }
    classifier(task.classes)
}
"""


def archc(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "archc.cli", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=120)


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    path = tmp_path / "nb201.arch"
    path.write_text(NB201)
    return path


def test_check_prints_tree_and_totals(spec: Path) -> None:
    out = archc("check", str(spec))
    assert out.returncode == 0, out.stderr
    assert "space nb201" in out.stdout and "15,625" in out.stdout
    assert "nb_cell.n2.op#2" in out.stdout  # decision paths are shown
    assert "input image: float[3, 32, 32]" in out.stdout


def test_check_json(spec: Path) -> None:
    out = archc("check", "--json", str(spec))
    data = json.loads(out.stdout)
    assert data["size"] == 15_625 and data["architectures"] == 15_625
    assert [d["path"] for d in data["decisions"]][:2] == ["nb_cell.n1.op", "nb_cell.n2.op"]
    assert all(d["domain"].startswith("choice(") for d in data["decisions"])


def test_sample_json_is_seeded_and_valid(spec: Path) -> None:
    import archc as api
    first = archc("sample", str(spec), "--seed", "3", "-n", "4", "--json").stdout.splitlines()
    again = archc("sample", str(spec), "--seed", "3", "-n", "4", "--json").stdout.splitlines()
    assert first == again and len(first) == 4
    space = api.load(spec)
    for line in first:
        space.validate(json.loads(line))


def test_sample_rejects_unknown_mode(spec: Path) -> None:
    out = archc("sample", str(spec), "--uniform", "tree")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "--uniform" in out.stderr


def test_fmt_round_trips(spec: Path) -> None:
    out = archc("fmt", str(spec))
    assert out.returncode == 0
    assert parse(out.stdout) == parse(NB201)
    formatted = spec.with_name("formatted.arch")
    formatted.write_text(out.stdout)
    assert archc("fmt", "--check", str(formatted)).returncode == 0
    assert archc("fmt", "--check", str(spec)).returncode == 1


def test_blocks_lists_library_and_one_block() -> None:
    listing = archc("blocks")
    assert listing.returncode == 0 and "mhc_lite" in listing.stdout
    one = archc("blocks", "mhc")
    assert "iters" in one.stdout and "Sinkhorn" in one.stdout
    bad = archc("blocks", "mhcc")
    assert bad.returncode == 1 and "did you mean 'mhc'" in bad.stderr


@pytest.mark.parametrize("text", [
    "space s {\n    input x: float[4]\n    linear(8\n}\n",        # parse error
    "space s {\n    input x: float[4]\n    lineer(8)\n}\n",       # check error
    "space s {\n    input x: float[4]\n    linear(out = 0)\n}\n",  # outside the domain
])
def test_user_errors_exit_1_without_traceback(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bad.arch"
    path.write_text(text)
    for command in ("check", "sample", "fmt"):
        out = archc(command, str(path))
        if (command == "fmt" and "lineer" in text) or ("out = 0" in text and command == "fmt"):
            continue  # fmt only parses: a checker error is not its concern
        assert out.returncode == 1, (command, out.stdout)
        assert "Traceback" not in out.stderr
        assert f"{path}:" in out.stderr and "^" in out.stderr


def test_missing_file_is_a_user_error(tmp_path: Path) -> None:
    out = archc("check", str(tmp_path / "nope.arch"))
    assert out.returncode == 1 and "Traceback" not in out.stderr and "cannot read" in out.stderr


MLP = """\
space mlp {
    input x: float[16]
    let w = choice(32, 64)
    linear(w)
    repeat n in int(1..3) share = weights { residual { linear(w) } }
    linear(task.classes)
}
"""


def test_compile_prints_blocks_and_totals(tmp_path: Path) -> None:
    spec = tmp_path / "mlp.arch"
    spec.write_text(MLP)
    point = tmp_path / "p.json"
    point.write_text('{"w": 32, "n": 2}')
    out = archc("compile", str(spec), "--point", str(point), "--const", "classes=10")
    assert out.returncode == 0, out.stderr
    assert "n.linear@1" in out.stdout and "shared" in out.stdout
    total = (16 * 32 + 32) + (32 * 32 + 32) + (32 * 10 + 10)
    assert f"{total:,}" in out.stdout
    code = archc("compile", str(spec), "--point", str(point), "--const", "classes=10", "--code")
    assert "def forward(self, x):" in code.stdout and "self.n_linear_0(" in code.stdout


HYPER = """\
space t {
    input tokens: int[16]
    embedding(vocab = 32, dim = 16)
    hyper(streams = 4, mix = mhc) {
        repeat 2 { residual { rmsnorm; mlp(ratio = 2) } }
    }
    linear(32)
}
"""


def test_compile_rows_of_a_hyper_network_add_up_to_the_totals() -> None:
    """Each site's connection and the collapse are rows, so the column sums are the totals."""
    import archc
    from archc.render import compiled_table

    table = compiled_table(archc.compile(archc.loads(HYPER), {}))
    names = list(table.columns[0].cells)
    assert names.count("connection (mhc)") == 2 and "collapse (sum)" in names
    params, flops = (list(table.columns[i].cells) for i in (3, 4))
    number = lambda cell: int(re.sub(r"\D", "", str(cell)))  # noqa: E731 ("[bold]6,358[/]")
    assert sum(map(number, params[:-1])) == number(params[-1])
    assert sum(map(number, flops[:-1])) == number(flops[-1])


def test_compile_errors_are_located_or_name_the_flag(tmp_path: Path) -> None:
    spec = tmp_path / "mlp.arch"
    spec.write_text(MLP)
    missing = archc("compile", str(spec))
    assert missing.returncode == 1 and f"{spec}:6:12" in missing.stderr
    assert "--const classes=" in missing.stderr and "Traceback" not in missing.stderr
    bad = archc("compile", str(spec), "--const", "classes=ten")
    assert bad.returncode == 1 and "--const takes NAME=INTEGER" in bad.stderr
    point = tmp_path / "p.json"
    point.write_text('{"w": 48, "n": 2}')
    invalid = archc("compile", str(spec), "--point", str(point), "--const", "classes=10")
    assert invalid.returncode == 1 and "'w' = 48 is not in choice(32, 64)" in invalid.stderr


def test_compile_exports_a_folder(tmp_path: Path) -> None:
    spec = tmp_path / "mlp.arch"
    spec.write_text(MLP)
    out = archc("compile", str(spec), "--const", "classes=10", "-o", str(tmp_path / "py"))
    assert out.returncode == 0, out.stderr
    assert {p.name for p in (tmp_path / "py").iterdir()} >= {
        "model.py", "weights.safetensors", "point.json"}
    assert "class Mlp(nn.Module)" in (tmp_path / "py" / "model.py").read_text()
    pt2 = archc("compile", str(spec), "--const", "classes=10", "-o", str(tmp_path / "pt2"),
                "--format", "pt2")
    assert pt2.returncode == 0 and (tmp_path / "pt2" / "model.pt2").is_file()
    bad = archc("compile", str(spec), "--const", "classes=10", "--format", "onnx")
    assert bad.returncode == 1 and "--format must be py or pt2" in bad.stderr
