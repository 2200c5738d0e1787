"""`loop(times = r) { body }`: one set of weights (norms included) applied r times, r possibly a
decision; the compiled module equals the body's modules applied r times by hand, and the cost
and hash see the sharing."""

from __future__ import annotations

import copy

import pytest
import torch

import archc
from archc.compiler.decode import decode
from archc.compiler.identity import structural_hash

SPEC = """space looped {{
    input tokens: int[6]
    embedding(vocab = 10, dim = 8)
    {loop} {{
        residual {{ layernorm; attention(heads = 2) }}
        residual {{ rmsnorm; mlp(ratio = 2) }}
    }}
}}
"""


def space(loop: str = "loop(times = int(1..4))") -> archc.Space:
    return archc.loads(SPEC.format(loop=loop), name="looped.arch")


def numel(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("times", [1, 2, 4])
def test_a_searched_loop_count_keeps_one_set_of_weights(times: int) -> None:
    built = archc.compile(space(), {"loop.times": times})
    once = archc.compile(space(), {"loop.times": 1})
    assert built.cost.params == once.cost.params == numel(built.module)
    assert len(list(built.module.children())) == 5  # embedding; two norms, attention, mlp
    calls = [n for n in built.module.graph.nodes if n.op == "call_module"]
    assert len(calls) == 1 + 4 * times
    assert built.cost.flops - once.cost.flops == (times - 1) * once.cost.flops  # embedding: 0


def test_the_loop_is_the_body_applied_again_by_hand() -> None:
    built = archc.compile(space(), {"loop.times": 3})
    embedding, norm1, attention, norm2, mlp = built.module.children()
    tokens = torch.randint(0, 10, (2, 6))
    want = embedding(tokens)
    for _ in range(3):
        want = want + attention(norm1(want))
        want = want + mlp(norm2(want))
    torch.testing.assert_close(built.module(tokens), want, rtol=0, atol=0)


def test_gradients_of_the_shared_weights_sum_over_iterations() -> None:
    """The shared module's gradient is the sum of the gradients of untied copies, one per
    iteration, that start from the same weights."""
    built = archc.compile(space(), {"loop.times": 2})
    embedding, *body = built.module.children()
    copies = [[copy.deepcopy(m) for m in body] for _ in range(2)]
    tokens = torch.randint(0, 10, (2, 6), generator=torch.Generator().manual_seed(0))
    built.module(tokens).pow(2).sum().backward()
    x = embedding(tokens).detach()
    for norm1, attention, norm2, mlp in copies:
        x = x + attention(norm1(x))
        x = x + mlp(norm2(x))
    x.pow(2).sum().backward()
    for i, shared in enumerate(body):
        for name, param in shared.named_parameters():
            untied = sum(dict(c[i].named_parameters())[name].grad for c in copies)
            torch.testing.assert_close(param.grad, untied, rtol=1e-5, atol=1e-6)


def test_the_hash_tells_loops_from_repeats_and_counts_apart() -> None:
    def h(loop: str, point: dict[str, object]) -> str:
        return structural_hash(decode(space(loop), point))
    loops = {h("loop(times = int(1..4))", {"loop.times": r}) for r in (1, 2, 3)}
    assert len(loops) == 3
    assert h("loop(times = 2)", {}) != h("repeat 2", {})
    assert h("loop(times = 2)", {}) != h("repeat 2 share = weights", {})
