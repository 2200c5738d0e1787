"""The standard layers: embeddings, dense layers, norms, activations, dropout and structure.

Each block declares what a spec may write (its hyperparameters) and its four rules: shape,
exact parameter count, FLOPs as torch's flop counter counts them (2 · multiply-adds of matmuls
and attention; pointwise ops, norms and lookups count nothing) and `build`. The modules are
torch's own or live in `standard_modules.py`, imported by `build` only. Attention, `mlp` and
the norms are bare layers (no residual, no norm of their own), so a search space can place norms
and residuals itself: `residual { rmsnorm; attention(heads = 4) }` is a pre-norm sub-layer.
Convolutions and pooling live in `convolution.py`; attention, MLP and heads in `transformer.py`.

Features sit on the last axis of `flat` (d,) and `seq` (t, d) tensors and on the first of the
channels-first `cl` (c, l) and `chw` (c, h, w); the norms normalise that axis at every position.

>>> Linear.signature.param("out").required
True
>>> Linear.params(Hyperparams({"out": 8, "bias": True}), TensorType((16,), "flat"))
136
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from archc.library.base import ParameterFree, block, hp
from archc.library.tensor import Hyperparams, ShapeError, TensorType

if TYPE_CHECKING:
    from torch import nn

__all__ = ["ACTIVATIONS", "FLOAT_LAYOUTS"]

ACTIVATIONS = ("relu", "gelu", "silu", "tanh", "sigmoid")
"""The pointwise activations; each is also a zero-argument block of the same name."""

FLOAT_LAYOUTS = ("flat", "seq", "cl", "chw")
"""Every layout of real-valued features (all but integer `tokens`)."""

_VASWANI = "Vaswani et al., Attention Is All You Need, NeurIPS 2017, arXiv 1706.03762"


class _SameType(ParameterFree):
    """Rules of a block that returns its input's type with no parameters and no counted FLOPs
    (activations, dropout, identity, zero); the block adds `build`, and `layouts` lists the
    layouts it takes."""

    layouts: tuple[str, ...] = FLOAT_LAYOUTS

    @classmethod
    def shape(cls, h: Hyperparams, x: TensorType) -> TensorType:
        x.expect(*cls.layouts, block=cls.signature.name)  # type: ignore[attr-defined]
        return x


class _Addition(_SameType):
    """Rules of a position code added to a (t, d) sequence (no FLOPs: it is an addition)."""

    layouts = ("seq",)


# Embeddings and positions ------------------------------------------------------------------------

@block("embedding", cite="Bengio et al., A Neural Probabilistic Language Model, JMLR 2003")
class Embedding:
    """Look up a learned vector for each integer token: (b, t) → (b, t, d)."""

    vocab = hp("int", doc="number of distinct tokens (usually task.vocab)", low=1)
    dim = hp("int", doc="width d of each vector", low=1)

    @staticmethod
    def shape(h: Hyperparams, x: TensorType) -> TensorType:
        x.expect("tokens", block="embedding")
        return TensorType((x.shape[0], h.dim), "seq")

    @staticmethod
    def params(h: Hyperparams, x: TensorType) -> int:
        return h.vocab * h.dim

    @staticmethod
    def flops(h: Hyperparams, x: TensorType) -> int:
        return 0  # a lookup, not a matmul

    @staticmethod
    def build(h: Hyperparams, x: TensorType) -> nn.Module:
        from torch import nn
        return nn.Embedding(h.vocab, h.dim)


@block("pos_embedding", cite="Devlin et al., BERT, NAACL 2019, arXiv 1810.04805")
class PosEmbedding(_Addition):
    """Add a learned vector per position; sequences may not be longer than `max_len`."""

    max_len = hp("int", 1024, doc="longest sequence the table covers", low=1)

    @staticmethod
    def shape(h: Hyperparams, x: TensorType) -> TensorType:
        x.expect("seq", block="pos_embedding")
        if x.shape[0] > h.max_len:
            raise ShapeError(f"pos_embedding covers max_len = {h.max_len} positions, got a "
                             f"sequence of {x.shape[0]}")
        return x

    @staticmethod
    def params(h: Hyperparams, x: TensorType) -> int:
        return h.max_len * x.last  # the whole table, used or not

    @staticmethod
    def build(h: Hyperparams, x: TensorType) -> nn.Module:
        from archc.library.standard_modules import PosEmbedding as Module
        return Module(h.max_len, x.last)


@block("sinusoidal", cite=_VASWANI)
class Sinusoidal(_Addition):
    """Add fixed sine/cosine position codes: no parameters and no length limit."""

    base = hp("float", 10000.0, doc="wavelength base of the frequencies", low=0, positive=True)

    @staticmethod
    def build(h: Hyperparams, x: TensorType) -> nn.Module:
        from archc.library.standard_modules import Sinusoidal as Module
        return Module(h.base)


# Dense layers ------------------------------------------------------------------------------------

@block("linear")
class Linear:
    """An affine map over the last axis, x Wᵀ + b: (…, d) → (…, out)."""

    out = hp("int", doc="output features", low=1)
    bias = hp("bool", True, doc="learn an additive bias b")

    @staticmethod
    def shape(h: Hyperparams, x: TensorType) -> TensorType:
        x.expect("flat", "seq", block="linear")
        return x.with_last(h.out)

    @staticmethod
    def params(h: Hyperparams, x: TensorType) -> int:
        return x.last * h.out + (h.out if h.bias else 0)

    @staticmethod
    def flops(h: Hyperparams, x: TensorType) -> int:
        return 2 * x.positions * x.last * h.out

    @staticmethod
    def build(h: Hyperparams, x: TensorType) -> nn.Module:
        from torch import nn
        return nn.Linear(x.last, h.out, bias=h.bias)


# Norms -------------------------------------------------------------------------------------------

def _over_features(norm: nn.Module, x: TensorType) -> nn.Module:
    """A feature-last `norm` applied to `x`'s feature axis (moved last for channels-first)."""
    if x.feature_axis == len(x.shape) - 1:
        return norm
    from archc.library.standard_modules import MoveAxis
    return MoveAxis(norm, 1, -1)


class _Norm(_SameType):
    """Rules of a norm over the feature axis, with `scales` learned vectors when affine."""

    scales = 0

    @classmethod
    def params(cls, h: Hyperparams, x: TensorType) -> int:
        return cls.scales * x.channels if h.affine else 0


@block("layernorm", cite="Ba, Kiros, Hinton, Layer Normalization, arXiv 1607.06450")
class Layernorm(_Norm):
    """Normalise the features at each position (the last axis of a sequence, the channels of
    1-D and 2-D inputs, as ConvNeXt does) to zero mean and unit variance, then scale and shift."""

    scales = 2
    eps = hp("float", 1e-5, doc="added to the variance for stability", low=0, positive=True)
    affine = hp("bool", True, doc="learn a per-feature scale and shift")

    @staticmethod
    def build(h: Hyperparams, x: TensorType) -> nn.Module:
        from torch import nn
        return _over_features(nn.LayerNorm(x.channels, h.eps, elementwise_affine=h.affine), x)


@block("rmsnorm", cite="Zhang, Sennrich, Root Mean Square Layer Normalization, NeurIPS 2019, "
       "arXiv 1910.07467")
class Rmsnorm(_Norm):
    """Divide the features at each position by their root mean square, then scale: layernorm
    without centring, over the same axis."""

    scales = 1
    eps = hp("float", 1e-6, doc="added to the mean square for stability", low=0, positive=True)
    affine = hp("bool", True, doc="learn a per-feature scale")

    @staticmethod
    def build(h: Hyperparams, x: TensorType) -> nn.Module:
        from torch import nn
        return _over_features(nn.RMSNorm(x.channels, h.eps, elementwise_affine=h.affine), x)


@block("batchnorm", cite="Ioffe, Szegedy, Batch Normalization, ICML 2015, arXiv 1502.03167")
class Batchnorm(_Norm):
    """Normalise each feature over the batch and every position, with running statistics for
    evaluation: BatchNorm1d for (d,), (c, l) and (t, d) (over d, the tokens as positions),
    BatchNorm2d for (c, h, w)."""

    scales = 2
    eps = hp("float", 1e-5, doc="added to the variance for stability", low=0, positive=True)
    momentum = hp("float", 0.1, doc="update rate of the running statistics", low=0, high=1)
    affine = hp("bool", True, doc="learn a per-channel scale and shift")

    @staticmethod
    def build(h: Hyperparams, x: TensorType) -> nn.Module:
        from torch import nn

        from archc.library.standard_modules import MoveAxis
        kind = nn.BatchNorm2d if x.layout == "chw" else nn.BatchNorm1d
        norm = kind(x.channels, h.eps, h.momentum, affine=h.affine)
        return MoveAxis(norm, -1, 1) if x.layout == "seq" else norm


# Activations -------------------------------------------------------------------------------------

class _Pointwise(_SameType):
    """Rules of an activation: its module is the activation named by `fn` or by the block."""

    @classmethod
    def build(cls, h: Hyperparams, x: TensorType) -> nn.Module:
        from archc.library.standard_modules import ACTIVATION_MODULES
        return ACTIVATION_MODULES[h.get("fn", cls.signature.name)]()  # type: ignore[attr-defined]


@block("relu", cite="Nair, Hinton, Rectified Linear Units, ICML 2010")
class Relu(_Pointwise):
    """max(x, 0), elementwise."""


@block("gelu", cite="Hendrycks, Gimpel, Gaussian Error Linear Units, arXiv 1606.08415")
class Gelu(_Pointwise):
    """x·Φ(x), elementwise (Φ the standard normal CDF)."""


@block("silu", cite="Ramachandran, Zoph, Le, Searching for Activation Functions, "
       "arXiv 1710.05941")
class Silu(_Pointwise):
    """x·sigmoid(x), elementwise (also called swish)."""


@block("tanh")
class Tanh(_Pointwise):
    """tanh(x), elementwise."""


@block("sigmoid")
class Sigmoid(_Pointwise):
    """1 / (1 + e^-x), elementwise."""


@block("activation")
class Activation(_Pointwise):
    """One pointwise activation chosen by name, so a space can search over it with a string
    decision: `activation(fn = choice("relu", "gelu"))`."""

    fn = hp("str", "gelu", doc="which activation", options=ACTIVATIONS)


@block("dropout", cite="Srivastava et al., Dropout, JMLR 2014")
class Dropout(_SameType):
    """Zero each element with probability p during training and rescale the rest by 1/(1-p)."""

    p = hp("float", 0.1, doc="probability of dropping an element", low=0, high=1)

    @staticmethod
    def build(h: Hyperparams, x: TensorType) -> nn.Module:
        from torch import nn
        return nn.Dropout(h.p)


# Structure ---------------------------------------------------------------------------------------

@block("identity", cite="Dong, Yang, NAS-Bench-201, ICLR 2020, arXiv 2001.00326")
class Identity(_SameType):
    """Return the input unchanged (NAS-Bench-201's 'skip_connect'); any layout."""

    layouts = ("tokens", *FLOAT_LAYOUTS)

    @staticmethod
    def build(h: Hyperparams, x: TensorType) -> nn.Module:
        from torch import nn
        return nn.Identity()


@block("zero", cite="Dong, Yang, NAS-Bench-201, ICLR 2020, arXiv 2001.00326")
class Zero(_SameType):
    """Return zeros shaped like the input (NAS-Bench-201's 'none'): an edge that cuts the path
    while keeping the cell's sums well-formed. No gradient flows through it; any layout."""

    layouts = ("tokens", *FLOAT_LAYOUTS)

    @staticmethod
    def build(h: Hyperparams, x: TensorType) -> nn.Module:
        from archc.library.standard_modules import Zero as Module
        return Module()


@block("flatten")
class Flatten(_SameType):
    """Merge every axis but the batch into one: (b, …) → (b, ∏…)."""

    @staticmethod
    def shape(h: Hyperparams, x: TensorType) -> TensorType:
        x.expect(*FLOAT_LAYOUTS, block="flatten")
        return TensorType((x.numel,), "flat")

    @staticmethod
    def build(h: Hyperparams, x: TensorType) -> nn.Module:
        from torch import nn
        return nn.Flatten()


@block("residual", body=True, cite="He et al., Deep Residual Learning, CVPR 2016, "
       "arXiv 1512.03385")
class Residual:
    """`residual { body }` computes x + body(x); the body must keep the input's shape. Inside
    `hyper`, each residual becomes a hyper-connection site whose mix replaces the plain sum.
    A body block: it has no rules of its own, the compiler wires x + body(x) from the body's."""
