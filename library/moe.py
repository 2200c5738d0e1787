"""Mixture of experts: a router sends each token to `top_k` of `experts` copies of a layer.

The expert is any block that keeps its input's shape (an `mlp` by default), so a space can
search over expert widths like any other layer: `moe(experts = 8, expert = mlp(ratio = 2))`.
Two gates (research/blocks.md §9, §12):

- `softmax` (WideNet): g = softmax(router logits) over all experts; the output is
  Σ_top-k g_i·E_i(x), with the gates not renormalised over the top-k.
- `sqrt` (SqrtGate, HyperP): softmax over the top-k logits only, then Σ √g_i·E_i(x), which keeps
  the output variance independent of k for independent experts. With a shared expert the
  routed and shared outputs are mixed with weights √½, √½ instead of summed.

WideNet's depth sharing (one attention and one MoE reused by every layer, each layer with its
own norms) is the language's `repeat n share = weights { … }`, not a hyperparameter here.

>>> Moe.signature.param("expert").default, Moe.signature.param("expert").kind
('mlp', 'layer')
"""

from __future__ import annotations

from archc.library.base import block, hp

__all__: list[str] = []

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
