"""Transformer layers and heads: multi-head attention, the MLP, classification and LM heads.

Like the other standard layers (`standard.py`), these are bare: no residual, no norm of their
own, so `residual { rmsnorm; attention(heads = 4) }` is a pre-norm sub-layer. Modules live in
`standard_modules.py`, imported by `build` only.

>>> Mlp.signature.param("activation").problem("relu6")
"must be one of 'relu', 'gelu', 'silu', 'tanh', 'sigmoid', 'swiglu'"
>>> h = Hyperparams({"heads": 4, "bias": True, "qk_norm": False, "rope": False})
>>> x = TensorType((6, 16), "seq")
>>> Attention.params(h, x), Attention.flops(h, x)  # 4·(16² + 16); 8·t·d² + 4·t²·d
(1088, 14592)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from archc.library.base import block, hp
from archc.library.standard import ACTIVATIONS, FLOAT_LAYOUTS, Linear
from archc.library.tensor import Hyperparams, ShapeError, TensorType

if TYPE_CHECKING:
    from torch import nn

__all__: list[str] = []

_VASWANI = "Vaswani et al., Attention Is All You Need, NeurIPS 2017, arXiv 1706.03762"


# Transformer layers ------------------------------------------------------------------------------

@block("attention", cite=_VASWANI)
class Attention:
    """Multi-head self-attention over the token axis: (b, t, d) → (b, t, d), with d split into
    `heads` heads of width d / heads (so heads must divide d). One fused q/k/v projection and
    an output projection; `qk_norm` learns one RMS-norm scale per head feature for q and for k
    (shared by the heads, as in OLMo 2 and Qwen 3)."""

    heads = hp("int", 4, doc="number of attention heads h", low=1)
    causal = hp("bool", False, doc="mask future tokens (for language models)")
    dropout = hp("float", 0.0, doc="dropout on the attention weights", low=0, high=1)
    bias = hp("bool", True, doc="learn biases in the q, k, v and output projections")
    qk_norm = hp("bool", False, doc="RMS-normalise queries and keys per head before the product")
    rope = hp("bool", False, doc="rotary position embedding on queries and keys (Su et al., "
              "RoFormer, arXiv 2104.09864)")

    @staticmethod
    def shape(h: Hyperparams, x: TensorType) -> TensorType:
        x.expect("seq", block="attention")
        if x.last % h.heads:
            raise ShapeError(f"attention splits d = {x.last} into heads = {h.heads} heads, "
                             f"so heads must divide d")
        if h.rope and x.last // h.heads % 2:
            raise ShapeError(f"attention with rope rotates feature pairs, so the head width "
                             f"d / heads = {x.last} / {h.heads} must be even")
        return x

    @staticmethod
    def params(h: Hyperparams, x: TensorType) -> int:
        d = x.last
        return 4 * d * d + (4 * d if h.bias else 0) + (2 * d // h.heads if h.qk_norm else 0)

    @staticmethod
    def flops(h: Hyperparams, x: TensorType) -> int:
        t, d = x.shape
        # q/k/v and output projections, then QKᵀ and AV: 2·t²·(d / h) each, summed over heads.
        # A causal mask halves the useful work but not what torch's flop counter counts.
        return 2 * t * d * 4 * d + 2 * 2 * t * t * d

    @staticmethod
    def build(h: Hyperparams, x: TensorType) -> nn.Module:
        from archc.library.standard_modules import Attention as Module
        return Module(x.last, h.heads, h.causal, h.dropout, h.bias, h.qk_norm, h.rope)


@block("mlp", cite=_VASWANI)
class Mlp:
    """The position-wise feed-forward layer: linear to hidden = round(ratio·d), activation,
    linear back to d. `swiglu` gates the hidden layer: silu(x W₁) ⊙ x W₃ (Shazeer,
    arXiv 2002.05202), one more d × hidden matrix."""

    ratio = hp("float", 4.0, doc="hidden width over input width", low=0, positive=True)
    activation = hp("str", "gelu", doc="activation of the hidden layer",
                    options=(*ACTIVATIONS, "swiglu"))
    dropout = hp("float", 0.0, doc="dropout on the hidden layer", low=0, high=1)
    bias = hp("bool", True, doc="learn biases in both linear layers")

    @staticmethod
    def _hidden(h: Hyperparams, x: TensorType) -> int:
        return round(h.ratio * x.last)  # Python rounds halves to even: round(2.5) == 2

    @staticmethod
    def shape(h: Hyperparams, x: TensorType) -> TensorType:
        x.expect("flat", "seq", block="mlp")
        if Mlp._hidden(h, x) < 1:
            raise ShapeError(f"mlp with ratio = {h.ratio} on d = {x.last} has no hidden unit "
                             f"(round(ratio · d) = 0)")
        return x

    @staticmethod
    def params(h: Hyperparams, x: TensorType) -> int:
        d, hidden, up = x.last, Mlp._hidden(h, x), 2 if h.activation == "swiglu" else 1
        return (up + 1) * d * hidden + ((up * hidden + d) if h.bias else 0)

    @staticmethod
    def flops(h: Hyperparams, x: TensorType) -> int:
        up = 2 if h.activation == "swiglu" else 1
        return 2 * x.positions * (up + 1) * x.last * Mlp._hidden(h, x)

    @staticmethod
    def build(h: Hyperparams, x: TensorType) -> nn.Module:
        from archc.library.standard_modules import Mlp as Module
        return Module(x.last, Mlp._hidden(h, x), h.activation, h.dropout, h.bias)


# Heads -------------------------------------------------------------------------------------------

@block("classifier")
class Classifier:
    """A classification head: pool every position away, keeping the features (the tokens of a
    sequence, the length or pixels of channels-first inputs; a flat vector has none), then a
    linear layer to `classes` logits: (b, …) → (b, classes). `first` and `last` take the first
    or last position (in raster order for images)."""

    classes = hp("int", doc="number of classes (usually task.classes)", low=1)
    pool = hp("str", "mean", doc="how to pool: average, maximum, or the first or last token",
              options=("mean", "max", "first", "last"))

    @staticmethod
    def shape(h: Hyperparams, x: TensorType) -> TensorType:
        x.expect(*FLOAT_LAYOUTS, block="classifier")
        return TensorType((h.classes,), "flat")

    @staticmethod
    def params(h: Hyperparams, x: TensorType) -> int:
        return (x.channels + 1) * h.classes

    @staticmethod
    def flops(h: Hyperparams, x: TensorType) -> int:
        return 2 * x.channels * h.classes  # the linear layer; pooling is not counted

    @staticmethod
    def build(h: Hyperparams, x: TensorType) -> nn.Module:
        from torch import nn

        from archc.library.standard_modules import PoolPositions
        pool = PoolPositions(h.pool, features_last=x.layout == "seq")
        return nn.Sequential(pool, nn.Linear(x.channels, h.classes))


@block("lm_head")
class LmHead:
    """Next-token logits at every position: (b, t, d) → (b, t, vocab)."""

    vocab = hp("int", doc="number of distinct tokens (usually task.vocab)", low=1)
    bias = hp("bool", False, doc="learn a bias per token")

    # A linear map to `vocab` features on sequences: Linear's rules, on Linear's terms.
    @staticmethod
    def shape(h: Hyperparams, x: TensorType) -> TensorType:
        x.expect("seq", block="lm_head")
        return Linear.shape(_as_linear(h), x)

    @staticmethod
    def params(h: Hyperparams, x: TensorType) -> int:
        return Linear.params(_as_linear(h), x)

    @staticmethod
    def flops(h: Hyperparams, x: TensorType) -> int:
        return Linear.flops(_as_linear(h), x)

    @staticmethod
    def build(h: Hyperparams, x: TensorType) -> nn.Module:
        return Linear.build(_as_linear(h), x)


def _as_linear(h: Hyperparams) -> Hyperparams:
    return Hyperparams({"out": h.vocab, "bias": h.bias})
