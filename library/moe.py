"""Mixture of experts: a router sends each token to `top_k` of `experts` copies of a layer.

The expert is any block that acts on each token alone and keeps its width (an `mlp` by default;
`linear(d)`, `phm_linear(d)` or an activation too; not `attention`, which mixes tokens), so a
space can search over expert widths like any other layer: `moe(experts = 8, expert =
mlp(ratio = 2))`. Its rules are read on one token, a (d,) vector.
Two gates (research/blocks.md §9, §12):

- `softmax` (WideNet): g = softmax(router logits) over all experts; the output is
  Σ_top-k g_i·E_i(x), with the gates not renormalised over the top-k.
- `sqrt` (SqrtGate, HyperP): softmax over the top-k logits only, then Σ √g_i·E_i(x), which keeps
  the output variance independent of k for independent experts. With a shared expert the
  routed and shared outputs are mixed with weights √½, √½ instead of summed.

WideNet's depth sharing (one attention and one MoE reused by every layer, each layer with its
own norms) is the language's `repeat n share = weights { … }`, not a hyperparameter here.

Rules: parameters d·e (router, no bias) + e experts (+ one shared). With a capacity, experts
run on e blocks of C = ⌊t·capacity·k / e⌋ rows (moe_modules.py), so FLOPs count C rows per
expert (exact at batch 1). Without one the rule counts k·t rows: exact when each expert runs
on exactly its own rows (large `mlp` experts, generic experts), the least it can be where
small `mlp` experts are padded to the largest group, which depends on the routing.
`flops_bounds` gives the range any routing can reach.

>>> Moe.signature.param("expert").default, Moe.signature.param("expert").kind
('mlp', 'layer')
>>> h = Hyperparams({"experts": 4, "top_k": 2, "expert": "mlp", "capacity": 1.0,
...                  "gate": "softmax", "noise": False, "aux": 0.01, "shared": False})
>>> Moe.params(h, TensorType((10, 8), "seq"))  # 8·4 router + 4 · (2·8·32 + 32 + 8)
2240
"""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING, Any

from archc.dsl import ir
from archc.library.base import BLOCKS, block, hp, implementation
from archc.library.tensor import Hyperparams, ShapeError, TensorType

if TYPE_CHECKING:
    from torch import nn

__all__ = ["capacity_rows"]

_CITE = ("Xue et al., Go Wider Instead of Deeper (WideNet), AAAI 2022, arXiv 2107.11817; "
         "SqrtGate: HyperP, arXiv 2603.28743")


@block("moe", cite=_CITE)
class Moe:
    """A token-routed mixture of experts: (b, t, d) → (b, t, d). Tokens routed to a full expert
    are dropped (output 0, so a surrounding residual passes them through)."""

    experts = hp("int", 8, doc="number of experts e", low=1)
    top_k = hp("int", 2, doc="experts per token k (at most `experts`)", low=1)
    expert = hp("block", "mlp", doc="the layer each expert is a copy of")
    capacity = hp("float", 0.0, doc="capacity factor: an expert takes at most "
                  "⌊tokens·capacity·k / e⌋ tokens; 0 means no limit", low=0)
    gate = hp("str", "softmax", doc="gate on the expert outputs (see the module docs)",
              options=("softmax", "sqrt"))
    noise = hp("bool", False, doc="add Gaussian noise of std 1/e to the router logits in training")
    aux = hp("float", 0.01, doc="weight of the load-balancing loss e·Σ f_i·P_i", low=0)
    shared = hp("bool", False, doc="add one always-on shared expert")

    @staticmethod
    def shape(h: Hyperparams, x: TensorType) -> TensorType:
        x.expect("flat", "seq", block="moe")
        if h.top_k > h.experts:
            raise ShapeError(f"moe sends each token to top_k = {h.top_k} experts, so it needs "
                             f"at least that many; got experts = {h.experts}")
        name, eh = _expert(h)
        token = _token(x)
        try:
            out = _rules(name).shape(eh, token)
        except ShapeError as err:
            raise ShapeError(f"moe's expert acts on one token, a {token}: {err}") from None
        if out != token:
            raise ShapeError(f"moe's expert must keep each token's type, but {name} turns "
                             f"{token} into {out}")
        return x

    @staticmethod
    def params(h: Hyperparams, x: TensorType) -> int:
        name, eh = _expert(h)
        return x.last * h.experts + (h.experts + h.shared) * _rules(name).params(eh, _token(x))

    @staticmethod
    def flops(h: Hyperparams, x: TensorType) -> int:
        t = x.positions
        rows = h.experts * min(capacity_rows(t, h.capacity, h.top_k, h.experts), t) \
            if h.capacity > 0 else h.top_k * t
        return _fixed_flops(h, x) + rows * _row_flops(h, x)

    @staticmethod
    def flops_bounds(h: Hyperparams, x: TensorType) -> tuple[int, int]:
        """Per-example FLOPs any routing and batch can give: no expert row at all (everything
        dropped) up to every expert taking every token."""
        fixed = _fixed_flops(h, x)
        return fixed, fixed + h.experts * x.positions * _row_flops(h, x)

    @staticmethod
    def build(h: Hyperparams, x: TensorType) -> nn.Module:
        from torch import nn

        from archc.library.moe_modules import ExpertMlps
        from archc.library.moe_modules import Moe as Module
        from archc.library.transformer import Mlp
        name, eh, token = *_expert(h), _token(x)
        experts: nn.Module
        if name == "mlp":
            experts = ExpertMlps(h.experts, x.last, Mlp._hidden(eh, token), eh.activation,
                                 eh.dropout, eh.bias)
        else:
            experts = nn.ModuleList(_rules(name).build(eh, token) for _ in range(h.experts))
        shared = _rules(name).build(eh, token) if h.shared else None
        return Module(x.last, h.experts, h.top_k, experts, shared, h.capacity, h.gate,
                      h.noise, h.aux)


def _expert(h: Hyperparams) -> tuple[str, Hyperparams]:
    """The expert block's name and hyperparameters: a resolved block (`mlp(ratio = 2)`), or a
    registered block's name standing for it with its defaults."""
    spec: Any = h.expert
    if isinstance(spec, ir.DefBlock):
        raise ShapeError("moe's expert must be a library block (mlp, attention, …); a `def` "
                         "cannot be copied per expert yet")
    if isinstance(spec, str):
        return spec, Hyperparams({p.name: p.default for p in BLOCKS[spec].params})
    return spec.name, spec.h


def _rules(name: str) -> Any:
    impl = implementation(name)
    if impl is None:
        raise ShapeError(f"moe's expert {name} cannot be compiled: the library declares it "
                         "but does not implement it")
    return impl


def _token(x: TensorType) -> TensorType:
    """What an expert sees: one token, a (d,) vector."""
    return TensorType((x.last,), "flat")


def _fixed_flops(h: Hyperparams, x: TensorType) -> int:
    """The router's matmul and the shared expert: the FLOPs routing does not change."""
    return 2 * x.positions * x.last * h.experts + h.shared * x.positions * _row_flops(h, x)


def _row_flops(h: Hyperparams, x: TensorType) -> int:
    """One expert on one token."""
    name, eh = _expert(h)
    return _rules(name).flops(eh, _token(x))


def capacity_rows(tokens: Any, capacity: float, top_k: int, experts: int) -> Any:
    """⌊tokens·capacity·k / e⌋, before the cap at `tokens`: the rows each expert may take.
    The capacity is read as the decimal the spec wrote (Fraction("1.2") is 6/5, while
    Fraction(1.2) is the binary 1.19999…, which would give 5 rows where 6 are meant), and the
    arithmetic is on integers, so `tokens` may be a symbolic batch size under torch.export.
    The cost rule and the module (`moe_modules.Moe`) both call this.

    >>> capacity_rows(20, 1.2, 1, 4), capacity_rows(10, 0.3, 1, 3)
    (6, 1)
    """
    ratio = Fraction(str(capacity)) * top_k / experts
    return tokens * ratio.numerator // ratio.denominator
