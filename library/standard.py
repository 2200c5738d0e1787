"""The standard layers: embeddings, dense layers, norms, activations, attention, MLP and heads.

Signatures only: what a spec may write and what each hyperparameter means. Attention, `mlp` and
the norms are bare layers (no residual, no norm of their own), so a search space can place norms
and residuals itself: `residual { rmsnorm; attention(heads = 4) }` is a pre-norm sub-layer.
Convolutions and pooling live in `convolution.py`.

>>> Linear.signature.param("out").required
True
>>> Mlp.signature.param("activation").problem("relu6")
"must be one of 'relu', 'gelu', 'silu', 'tanh', 'sigmoid', 'swiglu'"
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from archc.library.base import block, hp
from archc.library.tensor import Hyperparams, TensorType

if TYPE_CHECKING:
    from torch import nn

__all__ = ["ACTIVATIONS"]

ACTIVATIONS = ("relu", "gelu", "silu", "tanh", "sigmoid")
"""The pointwise activations; each is also a zero-argument block of the same name."""

_VASWANI = "Vaswani et al., Attention Is All You Need, NeurIPS 2017, arXiv 1706.03762"


# Embeddings and positions ------------------------------------------------------------------------

@block("embedding", cite="Bengio et al., A Neural Probabilistic Language Model, JMLR 2003")
class Embedding:
    """Look up a learned vector for each integer token: (b, t) → (b, t, d)."""

    vocab = hp("int", doc="number of distinct tokens (usually task.vocab)", low=1)
    dim = hp("int", doc="width d of each vector", low=1)


@block("pos_embedding", cite="Devlin et al., BERT, NAACL 2019, arXiv 1810.04805")
class PosEmbedding:
    """Add a learned vector per position; sequences may not be longer than `max_len`."""

    max_len = hp("int", 1024, doc="longest sequence the table covers", low=1)


@block("sinusoidal", cite=_VASWANI)
class Sinusoidal:
    """Add fixed sine/cosine position codes: no parameters and no length limit."""

    base = hp("float", 10000.0, doc="wavelength base of the frequencies", low=0, positive=True)


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

@block("layernorm", cite="Ba, Kiros, Hinton, Layer Normalization, arXiv 1607.06450")
class Layernorm:
    """Normalise the last axis to zero mean and unit variance, then scale and shift."""

    eps = hp("float", 1e-5, doc="added to the variance for stability", low=0, positive=True)
    affine = hp("bool", True, doc="learn a per-feature scale and shift")


@block("rmsnorm", cite="Zhang, Sennrich, Root Mean Square Layer Normalization, NeurIPS 2019, "
       "arXiv 1910.07467")
class Rmsnorm:
    """Divide the last axis by its root mean square, then scale: layernorm without centring."""

    eps = hp("float", 1e-6, doc="added to the mean square for stability", low=0, positive=True)
    affine = hp("bool", True, doc="learn a per-feature scale")


@block("batchnorm", cite="Ioffe, Szegedy, Batch Normalization, ICML 2015, arXiv 1502.03167")
class Batchnorm:
    """Normalise each channel over the batch (and spatial axes), with running statistics for
    evaluation; the channel axis is 1, as in convolutions."""

    eps = hp("float", 1e-5, doc="added to the variance for stability", low=0, positive=True)
    momentum = hp("float", 0.1, doc="update rate of the running statistics", low=0, high=1)
    affine = hp("bool", True, doc="learn a per-channel scale and shift")


# Activations -------------------------------------------------------------------------------------

@block("relu", cite="Nair, Hinton, Rectified Linear Units, ICML 2010")
class Relu:
    """max(x, 0), elementwise."""


@block("gelu", cite="Hendrycks, Gimpel, Gaussian Error Linear Units, arXiv 1606.08415")
class Gelu:
    """x·Φ(x), elementwise (Φ the standard normal CDF)."""


@block("silu", cite="Ramachandran, Zoph, Le, Searching for Activation Functions, "
       "arXiv 1710.05941")
class Silu:
    """x·sigmoid(x), elementwise (also called swish)."""


@block("tanh")
class Tanh:
    """tanh(x), elementwise."""


@block("sigmoid")
class Sigmoid:
    """1 / (1 + e^-x), elementwise."""


@block("activation")
class Activation:
    """One pointwise activation chosen by name, so a space can search over it with a string
    decision: `activation(fn = choice("relu", "gelu"))`."""

    fn = hp("str", "gelu", doc="which activation", options=ACTIVATIONS)


@block("dropout", cite="Srivastava et al., Dropout, JMLR 2014")
class Dropout:
    """Zero each element with probability p during training and rescale the rest by 1/(1-p)."""

    p = hp("float", 0.1, doc="probability of dropping an element", low=0, high=1)


# Structure ---------------------------------------------------------------------------------------

@block("identity", cite="Dong, Yang, NAS-Bench-201, ICLR 2020, arXiv 2001.00326")
class Identity:
    """Return the input unchanged (NAS-Bench-201's 'skip_connect')."""


@block("zero", cite="Dong, Yang, NAS-Bench-201, ICLR 2020, arXiv 2001.00326")
class Zero:
    """Return zeros shaped like the input (NAS-Bench-201's 'none'): an edge that cuts the path
    while keeping the cell's sums well-formed."""


@block("flatten")
class Flatten:
    """Merge every axis but the batch into one: (b, …) → (b, ∏…)."""


@block("residual", body=True, cite="He et al., Deep Residual Learning, CVPR 2016, "
       "arXiv 1512.03385")
class Residual:
    """`residual { body }` computes x + body(x); the body must keep the input's shape. Inside
    `hyper`, each residual becomes a hyper-connection site whose mix replaces the plain sum."""


# Transformer layers ------------------------------------------------------------------------------

@block("attention", cite=_VASWANI)
class Attention:
    """Multi-head self-attention over the token axis: (b, t, d) → (b, t, d), with d split into
    `heads` heads of width d / heads (so heads must divide d)."""

    heads = hp("int", 4, doc="number of attention heads h", low=1)
    causal = hp("bool", False, doc="mask future tokens (for language models)")
    dropout = hp("float", 0.0, doc="dropout on the attention weights", low=0, high=1)
    bias = hp("bool", True, doc="learn biases in the q, k, v and output projections")
    qk_norm = hp("bool", False, doc="RMS-normalise queries and keys per head before the product")
    rope = hp("bool", False, doc="rotary position embedding on queries and keys (Su et al., "
              "RoFormer, arXiv 2104.09864)")


@block("mlp", cite=_VASWANI)
class Mlp:
    """The position-wise feed-forward layer: linear to ratio·d, activation, linear back to d.
    `swiglu` gates the hidden layer: silu(x W₁) ⊙ x W₃ (Shazeer, arXiv 2002.05202)."""

    ratio = hp("float", 4.0, doc="hidden width over input width", low=0, positive=True)
    activation = hp("str", "gelu", doc="activation of the hidden layer",
                    options=(*ACTIVATIONS, "swiglu"))
    dropout = hp("float", 0.0, doc="dropout on the hidden layer", low=0, high=1)
    bias = hp("bool", True, doc="learn biases in both linear layers")


# Heads -------------------------------------------------------------------------------------------

@block("classifier")
class Classifier:
    """A classification head: pool every axis but the batch and the features (channels of a
    convolutional input, the last axis of a token sequence), then a linear layer to `classes`
    logits: (b, …, d) → (b, classes)."""

    classes = hp("int", doc="number of classes (usually task.classes)", low=1)
    pool = hp("str", "mean", doc="how to pool: average, maximum, or the first or last token",
              options=("mean", "max", "first", "last"))


@block("lm_head")
class LmHead:
    """Next-token logits at every position: (b, t, d) → (b, t, vocab)."""

    vocab = hp("int", doc="number of distinct tokens (usually task.vocab)", low=1)
    bias = hp("bool", False, doc="learn a bias per token")
