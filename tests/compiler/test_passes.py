"""Each graph pass keeps what the module computes (differential tests against the unpassed
graph) and does what it says."""

from __future__ import annotations

import operator

import pytest
import torch
from torch import fx, nn

import archc
from archc.compiler.decode import decode
from archc.compiler.lower import lower
from archc.compiler.passes import fold_constants, run_passes


def test_fold_constants_computes_constant_subgraphs_once() -> None:
    root = nn.Module()
    root.register_buffer("scale", torch.tensor([2.0, 3.0]))
    graph = fx.Graph()
    x = graph.placeholder("x")
    scale = graph.get_attr("scale")
    squared = graph.call_function(operator.mul, (scale, scale))
    shifted = graph.call_method("add", (squared, 1.0))
    graph.output(graph.call_function(operator.mul, (x, shifted)))
    gm = fx.GraphModule(root, graph)
    x_value = torch.randn(4, 2)
    expected = gm(x_value)
    gm = fold_constants(gm)
    gm.graph.lint()
    gm.recompile()
    assert torch.equal(gm(x_value), expected)
    ops = [n.op for n in gm.graph.nodes]
    assert ops == ["placeholder", "get_attr", "call_function", "output"]
    assert torch.equal(gm.folded_1, torch.tensor([5.0, 10.0]))


def _nb201_with_and_without_passes(ops: tuple[str, ...]) -> tuple[fx.GraphModule, ...]:
    """The NB201 network of the cell whose six edges carry `ops`, lowered without and with the
    passes, sharing weights; asserts the two compute the same."""
    keys = ("nb_cell.n1.op", "nb_cell.n2.op", "nb_cell.n2.op#2", "nb_cell.return.op",
            "nb_cell.return.op#2", "nb_cell.return.op#3")
    arch = decode(archc.load("examples/nb201.arch"), dict(zip(keys, ops, strict=True)),
                  {"classes": 10})
    plain = lower(arch, passes=False).eval()
    passed = run_passes(lower(arch, passes=False)).eval()
    passed.load_state_dict(plain.state_dict(), strict=False)
    x = torch.randn(2, 3, 32, 32)
    assert torch.allclose(plain(x), passed(x), atol=1e-6)
    return plain, passed


def test_passes_keep_outputs_of_cells_with_zero_and_skip_edges() -> None:
    plain, passed = _nb201_with_and_without_passes(
        ("none", "conv1", "skip", "pool", "none", "conv3"))
    blocks = {n.meta.get("block") for n in passed.graph.nodes}
    assert "zero" not in blocks and "identity" not in blocks
    # passes only ever remove modules
    assert sum(p.numel() for p in passed.parameters()) <= sum(
        p.numel() for p in plain.parameters())


def test_a_cell_that_computes_zero_keeps_only_what_follows_it() -> None:
    plain, passed = _nb201_with_and_without_passes(
        ("none", "conv1", "none", "none", "pool", "none"))
    assert "new_zeros" in passed.code and "self.conv2d(" not in passed.code  # the stem is dead
    assert "self.conv2d(" in plain.code


@pytest.mark.slow
def test_inductor_is_opt_in_and_computes_the_same() -> None:
    space = archc.loads("space s {\n input x: float[16]\n linear(32)\n residual { linear(32) }\n"
                        " gelu\n linear(4)\n}\n")
    built = archc.compile(space, {})
    fast = built.inductor()
    x = torch.randn(8, 16)
    assert torch.allclose(fast(x), built.module(x), atol=1e-5)


_HYPER = """space s {{
    input tokens: int[6]
    embedding(vocab = 11, dim = 8)
    hyper(streams = 4, mix = {mix}{collapse}) {{
        repeat 3 {{ residual {{ rmsnorm; mlp(ratio = 2) }} }}
    }}
    lm_head(11)
}}
"""


@pytest.mark.parametrize(("mix", "collapse"), [("hc", ""), ("hc(dynamic = true)", ""),
                                             ("kromhc", ""), ("mhc_lite", ', collapse = "head"')])
def test_depth_connections_are_handed_to_the_next_site(mix: str, collapse: str) -> None:
    """Each site but the first takes its predecessor's depth connection, and the collapse the
    last one's; outputs and every gradient equal the unfused graph's, while training (the
    per-token mixes through `fused_handed_site`, static hc through `depth_width`, the sum
    collapse as Σ mixed + (Σ post)·y, the head forming the streams)."""
    arch = decode(archc.loads(_HYPER.format(mix=mix, collapse=collapse), name="s.arch"), {}, {})
    plain = lower(arch, passes=False)
    fused = run_passes(lower(arch, passes=False))
    plain, fused = plain.double(), fused.double()  # float64: a check to 1e-10
    with torch.no_grad():
        for param in plain.parameters():
            param.add_(0.3 * torch.randn(param.shape, generator=torch.Generator().manual_seed(0)))
    fused.load_state_dict(plain.state_dict())
    depths = [n for n in fused.graph.nodes if n.meta.get("block") == "hc_depth"]
    sites = [n for n in fused.graph.nodes if n.meta.get("block") == "hc_width"]
    collapses = [n for n in fused.graph.nodes if n.meta.get("block") == "collapse"]
    assert not depths and [len(site.args) for site in sites] == [1, 3, 3]
    assert [len(node.args) for node in collapses] == [3]
    tokens = torch.randint(0, 11, (4, 6), generator=torch.Generator().manual_seed(1))
    results = []
    for gm in (plain, fused):
        out = gm(tokens)
        out.square().mean().backward()
        results.append([out, *(p.grad for p in gm.parameters())])
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
def test_a_fused_hyper_network_compiles_with_inductor() -> None:  # (torch's own warning)
    """torch.compile traces `Connection(mixed, post, y)` through the two plain connections
    (the native kernels stay out of traced code): outputs and gradients as in eager mode."""
    built = archc.compile(archc.loads(_HYPER.format(mix="hc", collapse=""), name="s.arch"), {})
    tokens = torch.randint(0, 11, (4, 6), generator=torch.Generator().manual_seed(1))
    grads = []
    for module in (built.inductor(), built.module):
        built.module.zero_grad()
        out = module(tokens)
        out.square().mean().backward()
        grads.append([out.detach(), *(p.grad.clone() for p in built.module.parameters())])
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
