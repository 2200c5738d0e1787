"""The moe block (library/moe.py, moe_modules.py) against plain per-token loops: routing and
gates, which tokens the capacity drops, the load-balancing loss and its value for uniform
routing, SqrtGate's variance, gradients to the router, the batched mlp experts against the
generic loop over experts, the aux-loss channel, eval determinism and located user errors."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
import torch
import torch.nn.functional as F

import archc
from archc.errors import ArchError
from archc.library.moe import capacity_rows
from archc.library.moe_modules import ExpertMlps, Moe, balance_loss, route
from archc.library.standard_modules import Mlp

TOL = {"rtol": 1e-10, "atol": 1e-12}


def _moe(e: int = 4, k: int = 2, d: int = 6, hidden: int = 5, capacity: float = 0.0,
         gate: str = "softmax", shared: bool = False, noise: bool = False, seed: int = 0,
         activation: str = "gelu") -> Moe:
    torch.manual_seed(seed)
    experts = ExpertMlps(e, d, hidden, activation, 0.0, True)
    extra = Mlp(d, hidden, activation, 0.0, True) if shared else None
    return Moe(d, e, k, experts, extra, capacity, gate, noise, 0.01).double()


def _expert(moe: Moe, i: int, x: torch.Tensor) -> torch.Tensor:
    """Expert i of the stacked weights on one token, written out."""
    m = moe.experts
    h = x @ m.w_up[i] + m.b_up[i, 0]
    if m.activation == "swiglu":
        value, gate = h.chunk(2)
        h = F.silu(value) * gate
    else:
        h = F.gelu(h)
    return h @ m.w_down[i] + m.b_down[i, 0]


def _naive(moe: Moe, x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """The moe written token by token, in token order: each token's choices, best first, take
    a slot of their expert while it has fewer than C tokens (WideNet's rule)."""
    tokens = x.reshape(-1, moe.d)
    n = len(tokens)
    capacity = (math.floor(Decimal(str(moe.capacity)) * n * moe.top_k / moe.e)
                if moe.capacity else n)  # the decimal the spec wrote, exactly
    used, dropped, out = [0] * moe.e, 0, torch.zeros_like(tokens)
    for t, token in enumerate(tokens):
        logits = moe.router.weight @ token
        probs = torch.softmax(logits, dim=0)
        scores = logits.tolist()
        best = sorted(range(moe.e), key=lambda i: -scores[i])[:moe.top_k]
        top = torch.softmax(logits[best], dim=0)
        for j, i in enumerate(best):
            g = torch.sqrt(top[j] + 1e-30) if moe.gate == "sqrt" else probs[i]
            if used[i] < capacity:
                out[t] += g * _expert(moe, i, token)
            else:
                dropped += 1
            used[i] += 1
        if moe.shared is not None:
            shared = moe.shared(token[None])[0]
            out[t] = (out[t] + shared) * math.sqrt(0.5) if moe.gate == "sqrt" else out[t] + shared
    return out.reshape(x.shape), dropped


@pytest.mark.parametrize(("gate", "shared", "activation"), [
    ("softmax", False, "gelu"), ("sqrt", False, "gelu"), ("sqrt", True, "swiglu"),
    ("softmax", True, "gelu")])
def test_routing_equals_a_naive_per_token_loop(gate: str, shared: bool, activation: str) -> None:
    moe = _moe(gate=gate, shared=shared, activation=activation)
    x = torch.randn(3, 7, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    want, dropped = _naive(moe, x)
    torch.testing.assert_close(moe(x), want, **TOL)
    assert dropped == moe.last_dropped == 0


@pytest.mark.parametrize(("e", "k", "capacity"), [(4, 2, 0.5), (4, 1, 1.0), (3, 2, 0.8),
                                                  (5, 3, 1.25)])
def test_capacity_drops_later_tokens_first_whatever_their_choice(e: int, k: int,
                                                                 capacity: float) -> None:
    moe = _moe(e=e, k=k, capacity=capacity, seed=e + k)
    with torch.no_grad():  # unbalanced routing, so some experts overflow
        moe.router.weight.add_(torch.linspace(0, 2, e, dtype=torch.float64)[:, None])
    x = torch.randn(2, 9, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    want, dropped = _naive(moe, x)
    torch.testing.assert_close(moe(x), want, **TOL)
    assert dropped > 0 and moe.last_dropped == dropped


@pytest.mark.parametrize(("capacity", "n", "k", "e"), [(1.2, 20, 1, 4), (0.3, 10, 1, 3),
                                                        (0.7, 30, 1, 7), (1.25, 16, 2, 5)])
def test_the_capacity_is_the_decimal_the_spec_wrote(capacity: float, n: int, k: int,
                                                    e: int) -> None:
    """C = ⌊N·capacity·k / e⌋ for the decimal value: the binary 1.2 is 1.1999…, whose product
    floors one row short (5 instead of 6 at N = 20, e = 4). The module and the cost rule agree."""
    want = math.floor(Decimal(str(capacity)) * n * k / e)
    moe = _moe(e=e, k=k, capacity=capacity, seed=e)
    assert moe._limit(n) == want == capacity_rows(n, capacity, k, e)
    with torch.no_grad():  # unbalanced routing, so the busiest expert overflows
        moe.router.weight.add_(torch.linspace(0, 2, e, dtype=torch.float64)[:, None])
    x = torch.randn(1, n, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    expected, dropped = _naive(moe, x)
    torch.testing.assert_close(moe(x), expected, **TOL)
    assert moe.last_dropped == dropped


def test_a_full_expert_drops_exactly_the_tokens_past_its_capacity() -> None:
    moe = _moe(e=2, k=1, capacity=1.0)
    with torch.no_grad():  # every token prefers expert 0
        moe.router.weight.zero_()
        moe.router.weight[0].fill_(1.0)
    x = torch.rand(1, 6, 6, dtype=torch.float64) + 0.1
    y = moe(x)[0]  # C = ⌊6 · 1 · 1 / 2⌋ = 3
    assert y[:3].abs().sum(-1).min() > 0 and not y[3:].any() and moe.last_dropped == 3


def test_the_balance_loss_is_e_sum_f_p_and_lambda_for_uniform_routing() -> None:
    moe = _moe(e=4, k=1, d=4)
    with torch.no_grad():
        moe.router.weight.copy_(3 * torch.eye(4))
    x = torch.eye(4, dtype=torch.float64)[None]  # token i prefers expert i: uniform routing
    moe(x)
    torch.testing.assert_close(moe.aux_loss(), torch.tensor(0.01, dtype=torch.float64))
    assert moe.aux_loss() is None, "aux_loss() forgets what it returned"

    logits = torch.randn(10, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    experts, _ = route(logits, 2, "softmax")
    f = torch.tensor([(experts == i).sum().item() / 20 for i in range(5)], dtype=torch.float64)
    p = torch.softmax(logits, dim=-1).mean(0)
    torch.testing.assert_close(balance_loss(logits, experts, 5), 5 * (f * p).sum(), **TOL)


def test_a_module_used_by_several_layers_adds_one_loss_per_use_until_a_step() -> None:
    moe = _moe()
    x = torch.randn(2, 3, 6, dtype=torch.float64)
    moe(moe(moe(x)))
    first = balance_loss(moe.router(x.reshape(-1, 6)).float(),
                         route(moe.router(x.reshape(-1, 6)).float(), 2, "softmax")[0], 4)
    pending = moe._pending
    assert len(pending) == 3 and torch.isclose(pending[0], 0.01 * first.double())
    with torch.no_grad():
        moe.router.weight.mul_(0.5)  # an optimizer step: in place, a new version
    moe(x)
    assert len(moe._pending) == 1, "losses of a finished step are dropped"
    moe.eval()(x)
    assert len(moe._pending) == 1, "eval forwards record nothing"


def test_sqrt_gate_keeps_the_variance_of_independent_experts_for_any_k() -> None:
    gen = torch.Generator().manual_seed(4)
    logits = torch.randn(20000, 8, generator=gen, dtype=torch.float64)
    for k in (1, 2, 4, 8):
        _, sqrt_gates = route(logits, k, "sqrt")
        _, soft_gates = route(logits, k, "softmax")
        outputs = torch.randn(20000, k, generator=gen, dtype=torch.float64)  # i.i.d., var 1
        assert (sqrt_gates * outputs).sum(-1).var() == pytest.approx(1.0, rel=0.05)
        assert (soft_gates * outputs).sum(-1).var() < 0.7
        torch.testing.assert_close((sqrt_gates ** 2).sum(-1), torch.ones(20000,
                                   dtype=torch.float64), **TOL)


@pytest.mark.parametrize("gate", ["softmax", "sqrt"])
def test_gradients_reach_the_router(gate: str) -> None:
    moe = _moe(gate=gate, capacity=1.0).train()
    x = torch.randn(2, 5, 6, dtype=torch.float64)
    moe(x).pow(2).sum().backward()
    assert moe.router.weight.grad is not None and moe.router.weight.grad.abs().sum() > 0
    moe.aux_loss()  # the first forward's loss, not used here
    moe.zero_grad()
    moe(x)
    moe.aux_loss().backward()  # the balance loss alone moves the router too
    assert moe.router.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("capacity", [0.9, 0.0])
def test_the_batched_mlp_experts_equal_the_generic_loop_over_experts(capacity: float) -> None:
    fast = _moe(e=3, k=2, capacity=capacity, gate="sqrt")
    mlps = torch.nn.ModuleList(Mlp(6, 5, "gelu", 0.0, True) for _ in range(3)).double()
    with torch.no_grad():
        for i, mlp in enumerate(mlps):
            mlp.up.weight.copy_(fast.experts.w_up[i].T)
            mlp.up.bias.copy_(fast.experts.b_up[i, 0])
            mlp.down.weight.copy_(fast.experts.w_down[i].T)
            mlp.down.bias.copy_(fast.experts.b_down[i, 0])
    slow = Moe(6, 3, 2, mlps, None, capacity, "sqrt", False, 0.01).double()
    slow.router.load_state_dict(fast.router.state_dict())
    x = torch.randn(4, 5, 6, dtype=torch.float64)
    torch.testing.assert_close(fast(x), slow(x), **TOL)
    assert fast.last_dropped == slow.last_dropped


@pytest.mark.parametrize("capacity", [0.0, 1.25])
def test_every_expert_grouping_gives_the_same_outputs_and_gradients(
        capacity: float, monkeypatch: pytest.MonkeyPatch) -> None:
    """The activation budget only decides how experts are grouped per matmul: one expert at a
    time (exact rows without a capacity), blocks of two (the last one smaller, e = 5) or all
    at once. Outputs are the naive loop's; gradients agree to rounding."""
    x = torch.randn(3, 7, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    row_bytes = 5 * 8  # hidden 5, float64
    grads = []
    for budget in (0, 2 * 21 * row_bytes, 2**30):  # 21 = N, the most rows an expert can get
        monkeypatch.setattr("archc.library.moe_modules._GROUP_BYTES", budget)
        moe = _moe(e=5, k=3, capacity=capacity, seed=7)
        y = moe(x)
        torch.testing.assert_close(y, _naive(moe, x)[0], **TOL)
        y.pow(2).sum().backward()
        grads.append([p.grad for p in moe.parameters()])
    assert [moe.experts.group(r) for r in (1, 21)] == [5, 5]  # the last budget: one group
    for other in grads[1:]:
        for got, want in zip(other, grads[0], strict=True):
            torch.testing.assert_close(got, want, **TOL)


def test_without_a_capacity_large_experts_run_exactly_their_rows(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """One expert at a time on its own tokens: N·k rows of expert FLOPs, what the cost rule
    counts, not e times the largest group."""
    from torch.utils.flop_counter import FlopCounterMode
    monkeypatch.setattr("archc.library.moe_modules._GROUP_BYTES", 0)
    moe = _moe(e=4, k=2, d=6, hidden=5).float()
    with torch.no_grad():  # unbalanced routing: padding to the largest group would show
        moe.router.weight.add_(torch.linspace(0, 2, 4)[:, None])
    with FlopCounterMode(display=False) as counter:
        moe(torch.randn(1, 10, 6))
    assert counter.get_total_flops() == 2 * 10 * 6 * 4 + 10 * 2 * 2 * (6 * 5 + 5 * 6)


def test_noise_only_in_training_and_eval_is_deterministic() -> None:
    moe = _moe(noise=True, capacity=1.0)
    x = torch.randn(2, 8, 6, dtype=torch.float64)
    moe.eval()
    torch.testing.assert_close(moe(x), moe(x), rtol=0, atol=0)
    torch.testing.assert_close(moe(x), _naive(moe, x)[0], **TOL)
    moe.train()
    torch.manual_seed(0)
    assert not torch.equal(moe(x), moe(x)), "training adds router noise"


def test_the_flop_count_is_e_buffers_of_capacity_rows() -> None:
    from torch.utils.flop_counter import FlopCounterMode
    moe = _moe(e=4, k=2, d=6, hidden=5, capacity=1.5).float()
    with FlopCounterMode(display=False) as counter:
        moe(torch.randn(1, 10, 6))
    rows = 4 * math.floor(10 * 1.5 * 2 / 4)  # C = 7 per expert
    assert counter.get_total_flops() == 2 * 10 * 6 * 4 + rows * 2 * (6 * 5 + 5 * 6)


SPEC = """space s {{
    input tokens: int[8]
    embedding(vocab = 11, dim = 16)
    {layer}
}}
"""


@pytest.mark.parametrize(("layer", "words"), [
    ("moe(expert = attention(heads = 2))", "acts on one token"),
    ("moe(expert = linear(8))", "must keep each token's type"),
    ("moe(experts = 2, top_k = 3)", "at least that many"),
    ("moe(expert = phm_linear(16, n = 3))", "n must divide both counts"),
])
def test_an_unusable_expert_is_a_located_error(layer: str, words: str) -> None:
    space = archc.loads(SPEC.format(layer=layer), name="s.arch")
    with pytest.raises(ArchError) as caught:
        archc.compile(space, {})
    (diag,) = caught.value.diagnostics
    assert diag.span is not None and diag.span.line == 4 and words in diag.message


def test_a_def_expert_is_a_located_error() -> None:
    text = ("def ffn { linear(16)\n gelu }\n"
            "space s {\n input tokens: int[8]\n embedding(vocab = 11, dim = 16)\n"
            " moe(expert = ffn)\n}\n")
    space = archc.loads(text, name="s.arch")
    with pytest.raises(ArchError) as caught:
        archc.compile(space, {})
    (diag,) = caught.value.diagnostics
    assert diag.span is not None and diag.span.line == 6 and "def" in diag.message


def test_the_parameter_count_is_router_plus_experts() -> None:
    space = archc.loads(SPEC.format(layer="moe(experts = 3, expert = mlp(ratio = 2), "
                                    "shared = true)"), name="s.arch")
    result = archc.compile(space, {})
    d, hidden, e = 16, 32, 3
    mlp = 2 * d * hidden + hidden + d
    assert result.cost.params == 11 * d + d * e + (e + 1) * mlp == sum(
        p.numel() for p in result.module.parameters())
