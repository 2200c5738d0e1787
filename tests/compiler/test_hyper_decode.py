"""hyper { } and hyperloop through the compiler: where the sites are, exact parameter counts
(the library's formulas against the module's numel), structural identity, pruning, and the
user's mistakes as located errors (golden files under golden/hyper/)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import archc
from archc.compiler.decode import decode
from archc.compiler.identity import structural_hash
from archc.errors import ArchError
from archc.library.hyper_connections import collapse_params, site_params

GOLDEN = Path(__file__).resolve().parent / "golden" / "hyper"

LAYER = """
        residual { rmsnorm; attention(heads = 2, causal = true) }
        residual { rmsnorm; mlp(ratio = 2) }"""


def lm(scope: str, body: str = LAYER, layers: str = "2", d: int = 16) -> archc.Space:
    """A small LM whose layers (`body`, repeated `layers` times; once without a repeat for
    "") sit in `scope` (`hyper(…)`, or "" for plain residuals)."""
    inner = f"repeat {layers} {{{body}\n    }}" if layers else body
    net = f"{scope} {{\n    {inner}\n    }}" if scope else inner
    text = (f"space lm {{\n    input tokens: int[8]\n    embedding(vocab = 20, dim = {d})\n"
            f"    {net}\n    rmsnorm\n    lm_head(20)\n}}\n")
    return archc.loads(text, name="lm.arch")


def numel(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def kinds(space: archc.Space, point: dict[str, object] | None = None) -> list[str]:
    arch = decode(space, point or {})
    return [data["kind"] for _, data in arch.graph.nodes(data=True)]


@pytest.mark.parametrize("mix", ["hc", "hc(dynamic = true)", "mhc(iters = 5)", "mhc_lite",
                                 "kromhc", "shc"])
def test_every_residual_is_one_site_and_params_are_the_formulas(mix: str) -> None:
    hyper = archc.compile(lm(f"hyper(streams = 4, mix = {mix})"), {})
    plain = archc.compile(lm(""), {})
    name = mix.split("(")[0]
    mix_hp = {"dynamic": True} if "dynamic" in mix else {"iters": 5} if "iters" in mix else {}
    added = 4 * site_params(name, mix_hp, 4, 16) + collapse_params("sum", 4, 16)
    assert hyper.cost.params == plain.cost.params + added == numel(hyper.module)
    assert kinds(lm(f"hyper(streams = 4, mix = {mix})")).count("hc_width") == 4
    assert hyper.cost.flops > plain.cost.flops


def test_bare_layers_are_sites_and_a_residual_inside_a_site_stays_plain() -> None:
    body = "\n        rmsnorm\n        residual { residual { mlp(ratio = 2) } }"
    found = kinds(lm("hyper(streams = 2)", body, layers="1"))
    assert found.count("hc_width") == 2 and found.count("add") == 1
    assert found.count("expand") == 1 and found.count("collapse") == 1


def test_the_head_collapse_counts_its_parameters() -> None:
    built = archc.compile(lm("hyper(streams = 2, collapse = \"head\")"), {})
    assert built.cost.params == numel(built.module)
    assert built.cost.params == archc.compile(lm("hyper(streams = 2)"), {}).cost.params + \
        collapse_params("head", 2, 16)


def test_the_hash_tells_mixes_streams_and_plain_residuals_apart() -> None:
    hashes = {structural_hash(decode(lm(scope), {})) for scope in (
        "", "hyper(streams = 2)", "hyper(streams = 4)", "hyper(streams = 4, mix = mhc)",
        "hyper(streams = 4, mix = mhc(iters = 5))", "hyper(streams = 4, collapse = \"head\")")}
    assert len(hashes) == 6
    again = structural_hash(decode(lm("hyper(streams = 4, mix = mhc(iters = 5))"), {}))
    assert again in hashes


def test_a_zero_layer_is_pruned_like_the_module_and_costs_agree() -> None:
    body = "\n        residual { zero }\n        residual { rmsnorm; mlp(ratio = 2) }"
    built = archc.compile(lm("hyper(streams = 2, mix = mhc)", body, layers="1"), {})
    assert built.cost.params == numel(built.module)
    zeros = [n for n in built.module.graph.nodes if n.target == "new_zeros"]
    assert [n.kwargs.get("dtype") for n in zeros] == [torch.float32]  # not the tokens' int
    assert torch.isfinite(built.module(torch.zeros(2, 8, dtype=torch.long))).all()


def test_a_searched_mix_decodes_to_the_chosen_one() -> None:
    space = lm("hyper(streams = choice(2, 4), mix = one_of(hc(dynamic = bool), mhc(iters = "
               "int(5..20)), mhc_lite, kromhc, shc))")
    point = {"hyper.streams": 4, "hyper.mix": "mhc", "hyper.mix.mhc.iters": 7}
    built = archc.compile(space, point)
    conns = [m for m in built.module.modules() if type(m).__name__ == "Connection"]
    assert len(conns) == 4 and {(c.mix, c.streams, c.iters) for c in conns} == {("mhc", 4, 7)}


# ── loop and hyperloop ───────────────────────────────────────────────────────────────────────

def test_a_loop_inside_hyper_shares_its_sites_connections() -> None:
    space = lm("hyper(streams = 2)", f"\n        loop(times = choice(2, 3)) {{{LAYER}\n        }}",
               layers="")
    two, three = (archc.compile(space, {"loop.times": r}) for r in (2, 3))
    assert two.cost.params == three.cost.params == numel(two.module) == numel(three.module)
    assert kinds(space, {"loop.times": 3}).count("hc_width") == 6
    assert sum(type(m).__name__ == "Connection" for m in three.module.modules()) == 2


HYPERLOOP = """space hl {{
    input tokens: int[8]
    embedding(vocab = 20, dim = 16)
    hyperloop(begin = rmsnorm, middle = layer, end = layernorm, loops = {loops}, streams = 2,
              mix = {mix}, share_mix = {share})
    lm_head(20)
}}
def layer() {{{layer}
}}
"""


def hyperloop(loops: int, share: bool, mix: str = "mhc") -> archc.Compiled:
    text = HYPERLOOP.format(loops=loops, share=str(share).lower(), mix=mix, layer=LAYER)
    return archc.compile(archc.loads(text, name="hl.arch"), {})


@pytest.mark.parametrize("share", [True, False])
def test_hyperloop_shares_the_middle_and_one_or_per_loop_mixes(share: bool) -> None:
    one, three = hyperloop(1, share), hyperloop(3, share)
    assert one.cost.params == numel(one.module) and three.cost.params == numel(three.module)
    per_loop = 0 if share else 2 * site_params("mhc", {}, 2, 16)
    assert three.cost.params - one.cost.params == per_loop
    calls = [n.target for n in three.module.graph.nodes if n.op == "call_module"]
    attention = [t for t in calls if "attention" in str(t)]
    assert len(attention) == 3 and len(set(attention)) == 1  # one module, called per loop
    connections = {name for name, m in three.module.named_modules()
                   if type(m).__name__ == "Connection"}
    assert len(connections) == (1 if share else 3)
    assert sum(t in connections for t in calls) == 3


def test_hyperloop_hash_sees_shared_and_per_loop_mixes() -> None:
    def h(share: bool) -> str:
        text = HYPERLOOP.format(loops=2, share=str(share).lower(), mix="mhc", layer=LAYER)
        return structural_hash(decode(archc.loads(text, name="hl.arch"), {}))
    assert h(True) != h(False)


# ── the user's mistakes ──────────────────────────────────────────────────────────────────────

ERRORS = {
    "kromhc_streams": lm("hyper(streams = 3, mix = kromhc)"),
    "mhc_lite_streams": lm("hyper(streams = 7, mix = mhc_lite)"),
    "layout": archc.loads("space img {\n    input image: float[3, 8, 8]\n    hyper(streams = 2) {"
                          "\n        residual { conv2d(3, k = 3) }\n    }\n}\n", name="img.arch"),
    "width": lm("hyper(streams = 2)", "\n        residual { rmsnorm; linear(8) }", layers="1"),
    "bare_width": lm("hyper(streams = 2)", "\n        linear(8)", layers="1"),
    "named": archc.loads("space dag {\n    input x: float[8]\n    hyper(streams = 2) {\n"
                         "        a = linear(8)(x)\n        return a + x\n    }\n}\n",
                         name="dag.arch"),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_mistakes_are_located_errors(case: str, golden) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ArchError) as info:
        archc.compile(ERRORS[case], {})
    text = info.value.render() + "\n"
    assert all(d.span is not None for d in info.value.diagnostics)
    golden(GOLDEN / f"{case}.txt", text)


@pytest.mark.parametrize("streams", [1, 4])
def test_static_hc_at_init_is_the_plain_residual_network(streams: int) -> None:
    """With the plain network's weights, an hc-connected one at its init computes the same:
    every stream is the residual state, the sum collapse gives n times it, and the final
    RMSNorm removes the n (exactly for one stream; up to its eps for four)."""
    plain = archc.compile(lm(""), {}).module
    hyper = archc.compile(lm(f"hyper(streams = {streams}, mix = hc)"), {}).module
    missing, unexpected = hyper.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and all("_hc." in key for key in missing)
    tokens = torch.randint(0, 20, (3, 8), generator=torch.Generator().manual_seed(0))
    tolerance = 0.0 if streams == 1 else 1e-5
    torch.testing.assert_close(hyper(tokens), plain(tokens), rtol=tolerance, atol=tolerance)


def test_a_def_that_wires_named_tensors_is_one_site() -> None:
    text = ("space s {\n    input x: float[8]\n    hyper(streams = 2) {\n        cell\n"
            "        linear(8)\n    }\n}\ndef cell()(x) {\n    a = linear(8)(x)\n"
            "    b = tanh(a)\n    return a + b\n}\n")
    built = archc.compile(archc.loads(text, name="cell.arch"), {})
    found = kinds(archc.loads(text, name="cell.arch"))
    assert found.count("hc_width") == 2 and found.count("add") == 1
    assert built.cost.params == numel(built.module)
