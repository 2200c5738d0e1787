"""Looped blocks: depth by applying the same weights several times.

`loop(times = l) { body }` runs one copy of the body l times (weights shared, gradients summed
over the iterations): the depth of l bodies for the parameters of one. `hyperloop` is the
Hyperloop Transformer (research/blocks.md §7): a begin block, a middle block looped on n
hyper-connected residual streams, and an end block; the streams are mixed only after each loop,
so the extra cost is one mix per loop.

Only the abstract of the Hyperloop paper is public, so three choices are ours and are exposed as
hyperparameters: the mix (`mhc` by default, as the paper cites mHC), whether the loops share one
mix (`share_mix`), and the collapse.

>>> [p.name for p in Hyperloop.signature.params][:3]
['begin', 'middle', 'end']
"""

from __future__ import annotations

from archc.library.base import block, hp
from archc.library.hyper_connections import COLLAPSES

__all__: list[str] = []

_HYPERLOOP = "Zeitoun, Torroba-Hennigen, Kim, Hyperloop Transformers, arXiv 2604.21254"


@block("loop", body=True, cite="Dehghani et al., Universal Transformers, ICLR 2019, "
       "arXiv 1807.03819")
class Loop:
    """Apply the body `times` times with one set of weights; the body must keep its input's
    shape. Unlike `repeat`, which makes a fresh copy (and fresh weights) per iteration."""

    times = hp("int", 2, doc="number of iterations l", low=1)


@block("hyperloop", cite=_HYPERLOOP)
class Hyperloop:
    """begin → expand to `streams` streams → `loops` × (middle on H_pre·X, then X ← H_res·X +
    H_postᵀ·middle(…)) → collapse → end. `middle` has one set of weights for all loops."""

    begin = hp("block", "identity", doc="layers before the loop (run once)")
    middle = hp("block", doc="the looped layers (weights shared across loops)")
    end = hp("block", "identity", doc="layers after the loop (run once)")
    loops = hp("int", 3, doc="number of times the middle block runs", low=1)
    streams = hp("int", 4, doc="number of residual streams n in the loop", low=1)
    mix = hp("block", "mhc", doc="how the streams are mixed after each loop", kind="mix")
    share_mix = hp("bool", False, doc="one mix for all loops instead of one per loop")
    collapse = hp("str", "sum", doc="how the streams are merged after the last loop",
                  options=COLLAPSES)
