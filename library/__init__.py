"""The block library: every block a spec can name, as torch-free signatures.

- `base`: the `@block` decorator and `hp(...)` hyperparameter declarations.
- `standard`: embeddings, positions, linear, norms, activations, dropout, identity, zero.
- `transformer`: multi-head attention, the MLP, classification and LM heads.
- `convolution`: 1-D/2-D convolutions, NAS-Bench-201's conv_bn_relu, pooling.
- `hyper_connections`: `hyper { }` residual streams and their mixes hc, mhc, mhc_lite, kromhc, shc.
- `looped`: weight-shared `loop { }` and the Hyperloop transformer.
- `hyper_kernels`: the HyperZ·Z·W operator and the Terminator block.
- `moe`: mixture of experts (WideNet routing, SqrtGate).
- `phm`: parameterized hypercomplex linear and convolution layers.

The torch side lives beside them and is imported only by `build`: `*_modules.py` (the
nn.Modules), `hyper_fused`, `hyper_fused_site`, `hyper_sinkhorn` and `hyper_maps` (the
hyper-connection kernels with hand-written backwards), `hyper_native` (their stream mixing in
C, compiled on first use, with torch's path wherever it cannot be built) and `slow_net` (the
hyper-kernels' coordinate network).

Importing this package registers every block and never imports torch, so `archc check` starts
fast; `REGISTRY` is what the checker resolves block names against.

>>> REGISTRY["hyper"].body, REGISTRY["mhc"].kind
(True, 'mix')
"""

from __future__ import annotations

from archc.dsl.signature import Registry
from archc.library import (  # noqa: F401  (imported to run their @block declarations)
    convolution,
    hyper_connections,
    hyper_kernels,
    looped,
    moe,
    phm,
    standard,
    transformer,
)
from archc.library.base import BLOCKS

__all__ = ["BLOCKS", "REGISTRY"]

REGISTRY = Registry(BLOCKS)
"""Every block of the library, by name."""
