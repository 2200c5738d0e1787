"""decode → Arch → lower: shapes inferred before weights, located errors, shared weights,
node metadata, the cost model against the built module, and compiled-property constraints."""

from __future__ import annotations

import pytest
import torch

import archc
from archc.compiler.cost import check_deferred, cost
from archc.compiler.decode import decode
from archc.compiler.lower import lower, module_name
from archc.errors import CheckError, PointError


def space_of(body: str, inputs: str = "input x: float[16]") -> archc.Space:
    return archc.loads(f"space s {{\n    {inputs}\n{body}\n}}\n", name="s.arch")


def test_decode_infers_types_and_paths() -> None:
    space = space_of("let w = choice(8, 16)\nlinear(w)\nrepeat n in int(1..3) { linear(w) }")
    arch = decode(space, {"w": 8, "n": 2})
    blocks = [(d["path"], str(d["type"])) for _, d in arch.blocks()]
    assert blocks == [("linear", "float[8] (flat)"), ("n[0].linear", "float[8] (flat)"),
                      ("n[1].linear", "float[8] (flat)")]
    assert arch.type_of(arch.output).shape == (8,)


def test_a_shape_mismatch_names_the_spec_line_and_both_types() -> None:
    space = space_of("linear(8)\nresidual { linear(4) }")
    with pytest.raises(CheckError) as err:
        decode(space, {})
    text = err.value.render()
    assert "s.arch:4:" in text and "float[8] (flat)" in text and "float[4] (flat)" in text


def test_a_block_rule_error_is_located() -> None:
    space = space_of("linear(8)", inputs="input x: float[3, 8, 8]")
    with pytest.raises(CheckError, match=r"linear expects flat \(d,\) or seq \(t, d\), got "
                                         r"float\[3, 8, 8\] \(chw\)") as err:
        decode(space, {})
    assert err.value.diagnostics[0].span.line == 3


def test_task_constants_and_symbolic_sizes_must_be_given() -> None:
    space = space_of("linear(task.classes)")
    with pytest.raises(CheckError, match=r"task\.classes is not known"):
        decode(space, {})
    assert decode(space, {}, task={"classes": 10}).type_of(1).shape == (10,)
    tokens = space_of("linear(4)", inputs="input x: float[d]")
    with pytest.raises(CheckError, match="the size 'd' of input 'x' is not known"):
        decode(tokens, {})
    assert decode(tokens, {}, dims={"d": 12}).type_of(0).shape == (12,)


def test_invalid_points_are_point_errors() -> None:
    space = space_of("linear(choice(8, 16))")
    with pytest.raises(PointError, match="not in choice"):
        decode(space, {"linear.out": 12})


def test_lowered_nodes_carry_span_path_and_block() -> None:
    space = space_of("linear(8)\nlinear(4)")
    gm = lower(decode(space, {}))
    calls = [n for n in gm.graph.nodes if n.op == "call_module"]
    assert [n.meta["path"] for n in calls] == ["linear", "linear#2"]
    assert [n.meta["span"].line for n in calls] == [3, 4]
    assert [n.target for n in calls] == ["linear", "linear_2"]
    assert "self.linear_2(linear)" in gm.code


def test_shared_weights_are_one_module_called_repeatedly() -> None:
    space = space_of("linear(16)\nrepeat 3 share = weights { linear(16) }\n"
                     "repeat 2 { linear(16) }")
    arch = decode(space, {})
    gm = lower(arch)
    real = sum(p.numel() for p in gm.parameters())
    assert real == cost(arch).params == 4 * (16 * 16 + 16)
    assert gm.code.count("self.repeat_linear_0(") == 3


def test_cost_model_equals_the_built_model() -> None:
    space = space_of("linear(32)\nresidual { linear(32) }\nlinear(task.classes, bias = false)")
    arch = decode(space, {}, task={"classes": 10})
    gm = lower(arch)
    measured = cost(arch)
    assert measured.params == sum(p.numel() for p in gm.parameters())
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as counter:
        gm(torch.randn(1, 16))
    assert measured.flops == counter.get_total_flops()


def test_outputs_equal_a_hand_written_module_with_the_same_weights() -> None:
    space = space_of("linear(32)\nresidual { linear(32) }\nlinear(4)")
    gm = lower(decode(space, {}))

    class Hand(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b, self.c = (torch.nn.Linear(16, 32), torch.nn.Linear(32, 32),
                                      torch.nn.Linear(32, 4))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.a(x)
            return self.c(h + self.b(h))

    hand = Hand()
    hand.load_state_dict({"a.weight": gm.linear.weight, "a.bias": gm.linear.bias,
                          "b.weight": gm.linear_2.weight, "b.bias": gm.linear_2.bias,
                          "c.weight": gm.linear_3.weight, "c.bias": gm.linear_3.bias})
    x = torch.randn(5, 16)
    assert torch.equal(gm(x), hand(x))


def test_compiled_property_constraints_use_the_cost_model() -> None:
    space = space_of("linear(choice(8, 512))\nrequire params < 1000")
    small, large = {"linear.out": 8}, {"linear.out": 512}
    check_deferred(space, small, cost(decode(space, small)))
    with pytest.raises(PointError, match=r"violates `require params < 1000` \(params = 8,704"):
        check_deferred(space, large, cost(decode(space, large)))


def test_module_names_are_identifiers_and_unique() -> None:
    taken: set[str] = set()
    assert module_name("layers[2].mlp#2", taken) == "layers_2_mlp_2"
    assert module_name("layers[2].mlp#2", taken) == "layers_2_mlp_2_2"
    assert module_name("3d", taken) == "m_3d"
