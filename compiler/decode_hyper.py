"""Decoding `hyper { }` and `hyperloop(…)` into the nodes of `compiler/hyper.py`.

`hyper(streams = n, mix = m, collapse = c) { body }`: expand at entry (n copies), then every
*site* of the body gets its own connection — width connection → layer → depth connection — and
the streams are collapsed at exit (`sum` by default: the HC paper's collapse). A site is

- each `residual { … }` directly in the body: its statements are the layer, and the residual's
  own sum is replaced by the depth connection;
- each other layer directly in the body (a bare `attention`, a cell `def` that wires named
  tensors…).

"Directly" sees through what only arranges statements: `repeat`, `one_of`, `optional`, `{ }`,
`def`s of statements and `loop` (whose sites, like its layers, share weights over the iterations:
one Connection per site for all of them). Inside a site's layer the streams are out of sight:
a `residual` there is a plain residual. Named tensors (`a = …(x)`) cannot be hyper-connected
and are a located error inside a hyper body, as is a site whose layer changes the width.

`hyperloop(begin, middle, end, loops, streams, mix, share_mix, collapse)`: begin → expand →
`loops` × (Connection_r, middle on its layer input, depth connection) → collapse → end. The
middle's weights are shared by every loop (norms included: it is one layer applied again);
the connections are one per loop, or one for all when `share_mix`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from archc.compiler.hyper import node_h, problem
from archc.dsl import ir
from archc.errors import CheckError, Span
from archc.library.tensor import TensorType

if TYPE_CHECKING:
    from archc.compiler.arch import Arch
    from archc.compiler.decode import BlockSpec, _Copy

__all__ = ["Streams", "HyperDecoding"]


@dataclass
class Streams:
    """The hyper scope of the statements being decoded: n streams mixed by `mix` at each site;
    `layers` numbers its connections in order (HC starts site k's H_pre on stream k mod n)."""

    streams: int
    mix: BlockSpec
    layers: dict[str, int] = field(default_factory=dict)

    def layer(self, key: str) -> int:
        return self.layers.setdefault(key, len(self.layers))


class HyperDecoding:
    """The hyper-connection part of the decoder (mixed into `decode._Decoder`)."""

    arch: Arch
    copy: _Copy
    site: Streams | None

    if TYPE_CHECKING:
        def apply(self, value: ir.Value, x: int, path: str, ix: tuple[int, ...],
                  span: Span | None) -> int: ...
        def seq(self, seq: ir.Seq | None, env: Any, ix: tuple[int, ...]) -> None: ...
        def hyperparams(self, block: ir.Block, ix: tuple[int, ...]) -> Any: ...
        def new_copy(self, suffix: str, share: str | None, norms: bool) -> _Copy: ...
        def new_env(self, x: int) -> Any: ...

    def hyper(self, value: ir.Block, x: int, path: str, ix: tuple[int, ...],
              span: Span | None) -> int:
        """`hyper(…) { body }` applied to node x: expand, the body's sites, collapse."""
        h = self.hyperparams(value, ix)
        where = value.span or span
        streams = self.expand(x, h.streams, h.mix, path, where)
        outer, self.site = self.site, Streams(h.streams, h.mix)
        env = self.new_env(streams)
        try:
            self.seq(value.body, env, ix)
        finally:
            self.site = outer
        return self.collapse(env.current, h.streams, h.collapse, path, where)

    def hyperloop(self, value: ir.Block, x: int, path: str, ix: tuple[int, ...],
                  span: Span | None) -> int:
        """`hyperloop(…)` applied to node x (see the module docs)."""
        h = self.hyperparams(value, ix)
        args, where = dict(value.args), value.span or span
        outer_site, self.site = self.site, None
        try:
            x = self.apply(args["begin"], x, f"{path}.begin", ix, where)
            streams = self.expand(x, h.streams, h.mix, path, where)
            outer, site = self.copy, Streams(h.streams, h.mix)
            for r in range(h.loops):
                here = f"{path}.mix" if h.share_mix else f"{path}.mix[{r}]"
                share = f"{outer.share or ''}/{here}" if h.share_mix or outer.share else None
                self.copy = self.new_copy(f"{outer.suffix}@{r}" if h.share_mix else
                                          outer.suffix, outer.share, outer.norms)
                middle = partial(self.loop_middle, args["middle"], path=path, ix=ix,
                                 span=where, r=r, outer=outer)
                streams = self.connect(site, streams, here, share, where, middle)
            self.copy = outer
            x = self.collapse(streams, h.streams, h.collapse, path, where)
            return self.apply(args["end"], x, f"{path}.end", ix, where)
        finally:
            self.site = outer_site

    def loop_middle(self, middle: ir.Value, x: int, *, path: str, ix: tuple[int, ...],
                    span: Span | None, r: int, outer: _Copy) -> int:
        """Iteration r of the middle block, sharing its weights (norms too) with every loop."""
        saved = self.copy
        self.copy = self.new_copy(f"{outer.suffix}@{r}", outer.share or f"{path}.middle", True)
        try:
            return self.apply(middle, x, f"{path}.middle", ix, span)
        finally:
            self.copy = saved

    # ── sites ────────────────────────────────────────────────────────────────────────────────

    def site_apply(self, value: ir.Block | ir.DefBlock, streams: int, path: str,
                   ix: tuple[int, ...], span: Span | None) -> int:
        """A site of the current hyper scope: `value` (a residual's statements, or the layer
        itself) between a width and a depth connection, decoded with the streams out of sight."""
        assert self.site is not None
        site, where = self.site, value.span or span

        def layer(x: int) -> int:
            if isinstance(value, ir.Block) and value.name == "residual":
                env = self.new_env(x)
                self.seq(value.body, env, ix)
                return int(env.current)
            return self.apply(value, x, path, ix, span)

        share = f"{self.copy.share}/{path}.hc" if self.copy.share else None
        outer, self.site = self.site, None
        try:
            return self.connect(site, streams, path + ".hc", share, where, layer)
        finally:
            self.site = outer

    def connect(self, site: Streams, streams: int, path: str, share: str | None,
                span: Span | None, layer: Callable[[int], int]) -> int:
        """Width connection of `streams` (a Connection module named after `path`, shared by
        the nodes of one `share` key), `layer` on its layer input, depth connection."""
        kind = self.arch.type_of(streams)
        n, here = site.streams, path + self.copy.suffix
        index = site.layer(share or here)
        width = self.arch.add("hc_width", "hc_width", kind, (streams,),
                              h=node_h(mix=site.mix, streams=n, layer=index), path=here,
                              span=span, share=share)
        items = [self.arch.add("hc_item", "hc_item", t, (width,), h=node_h(item=i),
                               path=here, span=span, **extra)
                 for i, (t, extra) in enumerate(((kind, {}), (kind, {"streams": n}),
                                                 (kind.with_last(n), {})))]
        y = layer(items[0])
        if self.arch.type_of(y) != kind:
            raise CheckError(f"a hyper-connection site must keep the width of the streams: "
                             f"its layer takes {kind} and gives {self.arch.type_of(y)}", span,
                             "wrap only width-preserving layers in hyper { }; change the width "
                             "before or after it")
        return self.arch.add("hc_depth", "hc_depth", kind, (items[1], items[2], y),
                             h=node_h(streams=n), path=here, span=span,
                             streams=n)

    def expand(self, x: int, streams: int, mix: BlockSpec, path: str, span: Span | None) -> int:
        kind = self.arch.type_of(x)
        wrong = problem(streams, mix.name, kind)
        if wrong:
            raise CheckError(wrong, span)
        return self.arch.add("expand", "expand", kind, (x,), h=node_h(streams=streams),
                             path=f"{path}.expand{self.copy.suffix}", span=span,
                             streams=streams)

    def collapse(self, streams: int, n: int, how: str, path: str, span: Span | None) -> int:
        kind: TensorType = self.arch.type_of(streams)
        share = f"{self.copy.share}/{path}.collapse" if self.copy.share else None
        return self.arch.add("collapse", "collapse", kind, (streams,),
                             h=node_h(how=how, streams=n),
                             path=f"{path}.collapse{self.copy.suffix}", span=span, share=share)
