"""Looped blocks: depth by applying the same weights several times.

`loop(times = l) { body }` runs one copy of the body l times (weights shared, gradients summed
over the iterations): the depth of l bodies for the parameters of one. `hyperloop` is the
Hyperloop Transformer (research/blocks.md §7): a begin block, a middle block looped on n
hyper-connected residual streams, and an end block; the streams are mixed only after each loop,
so the extra cost is one mix per loop.

Only the abstract of the Hyperloop paper is public (no code), so these choices are ours; the
first three are hyperparameters:

- the mix: `mhc` by default, as the paper builds on mHC; any mix block may be given;
- per-loop or shared connection parameters: one Connection per loop by default (loop r's
  connection may learn how much of the middle's r-th output to keep), one for all loops with
  `share_mix = true` (then Hyperloop adds the parameters of one site, whatever `loops` is);
- the collapse: the sum of the streams (HC's), or `"head"`;
- the middle block shares everything over the loops, norms included, as `loop` does; begin and
  end are run once each, outside the streams (plain residual layers), and no loop-index
  embedding is added.

Both blocks are wired by the compiler (compiler/decode.py, compiler/decode_hyper.py): `loop`
into the body's nodes repeated with one `share` key, `hyperloop` into expand → (Connection,
middle, depth connection) × loops → collapse.

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
    """Apply the body `times` times with one set of weights, norms included; the body must keep
    its input's shape. Unlike `repeat`, which makes a fresh copy (and fresh weights) per
    iteration. Inside `hyper { }` its sites share one connection over the iterations too."""

    times = hp("int", 2, doc="number of iterations l", low=1)


@block("hyperloop", cite=_HYPERLOOP)
class Hyperloop:
    """begin → expand to `streams` streams → `loops` × (middle on H_pre·X, then X ← H_res·X +
    H_postᵀ·middle(…)) → collapse → end. `middle` has one set of weights for all loops; the
    connections are one per loop, or one for all with `share_mix` (see the module docs)."""

    begin = hp("block", "identity", doc="layers before the loop (run once)")
    middle = hp("block", doc="the looped layers (weights shared across loops)")
    end = hp("block", "identity", doc="layers after the loop (run once)")
    loops = hp("int", 3, doc="number of times the middle block runs", low=1)
    streams = hp("int", 4, doc="number of residual streams n in the loop", low=1)
    mix = hp("block", "mhc", doc="how the streams are mixed after each loop", kind="mix")
    share_mix = hp("bool", False, doc="one mix for all loops instead of one per loop")
    collapse = hp("str", "sum", doc="how the streams are merged after the last loop",
                  options=COLLAPSES)
