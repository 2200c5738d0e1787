"""The torch modules behind `moe` (library/moe.py): routing, sorted dispatch and the experts.

Dispatch works on the N·k (token, choice) assignments, token-major (token n's j-th choice is
entry n·k + j). A stable sort by expert groups them, each group in token order; an assignment's
slot is its rank in its group, and slots at or beyond the capacity C are dropped, so later
tokens are dropped first and a token's first and second choices compete equally (WideNet's
cumulative-sum rule, research/blocks.md §9.5). The kept assignments' tokens are laid out
expert after expert, gathered straight from the input (no zero-filled buffer), in one of two
layouts:

- e blocks of M rows, M = C with a capacity (or, without one, the largest group; every token
  under torch.export, which cannot read the routing): uniform, so a group of experts runs
  as one bmm per matmul. Padding rows cost FLOPs (e·M rows, not N·k) and are never read;
  experts act on single tokens (the block's rules check that they take a (d,) vector), so
  padding changes nothing else. Each assignment reads its output back from its row
  (dropped ones from a zero row), and a token's k outputs are weighted by their gates and
  summed.
- without a capacity, when the experts are large (one `mlp` expert's activation fills a group
  alone) or generic: exact, each expert on exactly its own rows, N·k in all, its outputs
  weighted by their gates and added into their tokens.

`ExpertMlps` (every `mlp` expert) stacks the experts' weights into (e, d, hidden) and
(e, hidden, d) parameters and runs them in groups: as many experts per bmm as keep the
largest activation under 8 MiB, or one expert's plain matmuls at a time. Where experts are
large this is a loop over experts (never over tokens), chosen because it is what is fast on
a CPU (benchmarks/moe_dispatch.py): buffers over 32 MiB are fresh mmaps that page-fault on
every pass, a one-expert mm beats a batched bmm, and exact rows skip the padding. Any other
expert (`nn.ModuleList`) is called once on its rows.

The load-balancing loss (Switch/GShard form) is λ·e·Σᵢ fᵢ·Pᵢ, fᵢ the fraction of the N·k
assignments routed to expert i before capacity drops, Pᵢ the mean router probability; it is
λ for perfectly uniform routing. It travels through the aux-loss channel (docs/architecture.md):
training forwards record it, `aux_loss()` returns their sum and forgets them.

>>> import torch
>>> moe = Moe(8, 4, 2, ExpertMlps(4, 8, 16, "gelu", 0.0, True), None, 0.0, "softmax",
...           False, 0.01)
>>> moe(torch.randn(2, 5, 8)).shape, moe.aux_loss() is not None, moe.last_dropped
(torch.Size([2, 5, 8]), True, 0)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from archc.library.moe import capacity_rows
from archc.library.standard_modules import ACTIVATION_MODULES, activate

__all__ = ["Moe", "ExpertMlps", "route", "balance_loss"]


def route(logits: torch.Tensor, top_k: int, gate: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, e) router logits → the top-k experts (N, k) and their gates (N, k).

    `softmax` (WideNet): the full softmax's probabilities of the chosen experts, not
    renormalised. `sqrt` (SqrtGate): softmax over the top-k logits, then √(g + 1e-30), so
    Σ gᵢ = 1 and independent expert outputs keep their variance whatever k is."""
    top, experts = logits.topk(top_k, dim=-1)  # (N, k), largest first
    if gate == "sqrt":
        return experts, torch.sqrt(torch.softmax(top, dim=-1) + 1e-30)
    return experts, torch.softmax(logits, dim=-1).gather(-1, experts)


def balance_loss(logits: torch.Tensor, experts: torch.Tensor, e: int) -> torch.Tensor:
    """e·Σᵢ fᵢ·Pᵢ: fᵢ the share of assignments to expert i, Pᵢ its mean router probability."""
    share = _counts(experts.reshape(-1), e).to(logits.dtype) / experts.numel()
    return e * (share * torch.softmax(logits, dim=-1).mean(0)).sum()


def _counts(flat: torch.Tensor, e: int) -> torch.Tensor:
    """How many entries of `flat` name each of the e experts. A comparison table summed, not
    bincount: its size is fixed, so it runs on the meta device and under torch.export, and
    unlike a scatter-add into e bins it does not contend on a few memory cells."""
    return (flat[:, None] == torch.arange(e, device=flat.device)).sum(0)


def _sizes(counts: torch.Tensor) -> list[int] | None:
    """The group sizes, read back (one host sync) to choose the layout and size the buffer
    without a capacity. None on the meta device (no routing there) and under torch.export (no
    data-dependent sizes): then every expert may take every token, n rows each, the same
    outputs for e·n rows of FLOPs."""
    if counts.is_meta or torch.compiler.is_exporting():
        return None
    return counts.tolist()


class ExpertMlps(nn.Module):
    """`e` copies of the `mlp` block with their weights stacked, each expert on its own block
    of rows (see forward). Initialised like nn.Linear (U(±1/√fan_in), weight and bias)."""

    def __init__(self, e: int, d: int, hidden: int, activation: str, dropout: float,
                 bias: bool) -> None:
        super().__init__()
        self.e, self.d, self.hidden, self.activation = e, d, hidden, activation
        self.dropout, self.bias = dropout, bias
        self.gated = activation == "swiglu"
        up = 2 * hidden if self.gated else hidden
        self.w_up = nn.Parameter(_uniform((e, d, up), d))
        self.w_down = nn.Parameter(_uniform((e, hidden, d), hidden))
        self.b_up = nn.Parameter(_uniform((e, 1, up), d)) if bias else None
        self.b_down = nn.Parameter(_uniform((e, 1, d), hidden)) if bias else None
        self.act = ACTIVATION_MODULES["silu" if self.gated else activation]()
        self.drop = nn.Dropout(dropout)

    def forward(self, blocks: list[torch.Tensor]) -> list[torch.Tensor]:
        """The experts on their rows, in blocks of g experts taken in order: each block
        (g, M, d) → (g, M, d), or (M, d) → (M, d) for one expert (plain matmuls, faster than
        a one-expert bmm). The weights are split into blocks once per call, so the backward
        pass assembles each weight's gradient in one piece (indexing a weight per block
        would zero-fill a full-size gradient per block)."""
        g = 1 if blocks[0].dim() == 2 else len(blocks[0])
        out = []
        for x, w_up, b_up, w_down, b_down in zip(
                blocks, *(_split(w, g, self.e) for w in (self.w_up, self.b_up, self.w_down,
                                                          self.b_down)), strict=True):
            h = activate(_affine(x, w_up, b_up), self.act, self.gated)  # (g, M, hidden) or (M, …)
            out.append(_affine(self.drop(h), w_down, b_down))
        return out

    def group(self, rows: int) -> int:
        """How many experts to run at once on `rows` rows each: as many as keep the (g, M, up)
        activation within _GROUP_BYTES, at least one (all of them under torch.export, where
        `rows` is symbolic)."""
        if torch.compiler.is_exporting():
            return self.e
        row_bytes = self.w_up.shape[-1] * self.w_up.element_size()
        return max(1, min(self.e, _GROUP_BYTES // max(1, rows * row_bytes)))


# The largest activation buffer one group of experts may need. glibc serves allocations over
# 32 MiB by a fresh mmap, so a buffer above it page-faults in on every forward and backward;
# under it, freed buffers are reused. Smaller groups also stay closer to the caches.
_GROUP_BYTES = 8 * 2**20


def _uniform(shape: tuple[int, ...], fan_in: int) -> torch.Tensor:
    bound = 1 / math.sqrt(fan_in)
    return torch.empty(shape).uniform_(-bound, bound)


def _split(w: torch.Tensor | None, g: int, e: int) -> Sequence[torch.Tensor | None]:
    """A stacked parameter (e, …) cut into blocks of g experts ((…) each for g = 1), the
    last block maybe smaller; None (no bias) once per block."""
    if w is None:
        return [None] * -(-e // g)
    return w.unbind(0) if g == 1 else w.split(g)


def _affine(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    """x @ w + b. One expert: addmm, which hands the bias to the GEMM (measured faster than
    mm then add). Several: bmm, the bias added in place to its output, since baddbmm first
    copies the broadcast bias into the whole output, one more pass over it."""
    if x.dim() == 2:
        return torch.mm(x, w) if b is None else torch.addmm(b, x, w)
    y = torch.bmm(x, w)
    return y if b is None else y.add_(b)


class Moe(nn.Module):
    """A mixture of `e` experts over the last axis of (…, d), `top_k` per token; `experts` is
    an `ExpertMlps` (batched) or an `nn.ModuleList` of any shape-keeping layers (generic).
    `shared`, if given, is an always-on expert; `capacity` 0 means no limit."""

    def __init__(self, d: int, e: int, top_k: int, experts: nn.Module, shared: nn.Module | None,
                 capacity: float, gate: str, noise: bool, aux: float) -> None:
        super().__init__()
        self.d, self.e, self.top_k, self.experts, self.shared = d, e, top_k, experts, shared
        self.capacity, self.gate, self.noise, self.aux = capacity, gate, noise, aux
        self.router = nn.Linear(d, e, bias=False)
        self._pending: list[torch.Tensor] = []
        self._pending_version = -1
        self._dropped: torch.Tensor | int = 0

    @property
    def last_dropped(self) -> int:
        """(token, choice) assignments dropped by the capacity in the latest forward."""
        return int(self._dropped)

    def aux_loss(self) -> torch.Tensor | None:
        """λ times the load-balancing losses of the training forwards since the last call (a
        module shared by several layers adds one per use, as WideNet does), then forgets them;
        None if there were none."""
        pending, self._pending = self._pending, []
        return torch.stack(pending).sum() if pending else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = x.reshape(-1, self.d)  # (N, d)
        logits = self.router(tokens)  # (N, e), routed in fp32 at least
        logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
        if self.noise and self.training:
            logits = logits + torch.randn_like(logits) / self.e
        experts, gates = route(logits, self.top_k, self.gate)  # (N, k) each
        y = self._dispatch(tokens, experts, gates.to(tokens.dtype))
        if self.shared is not None:
            shared = self.shared(tokens)
            y = (y + shared) * math.sqrt(0.5) if self.gate == "sqrt" else y + shared
        if self.training and not torch.compiler.is_compiling():
            self._record(balance_loss(logits, experts, self.e))
        return y.reshape(x.shape)

    def _record(self, loss: torch.Tensor) -> None:
        """Keep λ·loss for aux_loss(). Pending losses from before an optimizer step (the
        router's version counter moved) belong to a finished step and are dropped, so a
        caller that never asks does not keep graphs alive."""
        version = self.router.weight._version
        if version != self._pending_version:
            self._pending, self._pending_version = [], version
        self._pending.append(self.aux * loss)

    def _dispatch(self, tokens: torch.Tensor, experts: torch.Tensor,
                  gates: torch.Tensor) -> torch.Tensor:
        n, k = experts.shape
        flat = experts.reshape(-1)  # (N·k,), token-major
        order = torch.argsort(flat, stable=True)  # grouped by expert, token order inside
        counts = _counts(flat, self.e)  # (e,)
        limit = self._limit(n)
        if limit is None:
            if not torch.compiler.is_compiling():
                self._dropped = 0
            sizes = _sizes(counts)
            if sizes is not None and self._exact(max(sizes)):
                return self._exact_rows(tokens, order, gates.reshape(-1), sizes)
            rows = n if sizes is None else max(sizes)
        else:
            rows = limit
        starts = counts.cumsum(0) - counts  # (e,) where each group begins in sorted order
        ranks = torch.arange(n * k, device=flat.device) - starts[flat[order]]
        slot = torch.empty_like(ranks).index_put((order,), ranks)  # each assignment's rank
        keep = slot < limit if limit is not None else None
        if keep is not None and not torch.compiler.is_compiling():
            self._dropped = (~keep).sum()
        group = self.experts.group(rows) if isinstance(self.experts, ExpertMlps) else 1
        out = self._experts(tokens, flat * rows + slot, keep, rows, group)  # (N·k, d), token-major
        weights = gates if keep is None else gates * keep.view(n, k)  # dropped: 0
        return (out.view(n, k, self.d) * weights.unsqueeze(-1)).sum(1)  # (N, d)

    def _exact(self, largest: int) -> bool:
        """Whether to run each expert on exactly its own rows, one expert at a time (no
        capacity, `largest` rows in the busiest group): when that is a loop of large matmuls
        (an `mlp` expert's rows fill a group alone) or of generic experts (called one by one
        anyway)."""
        if not isinstance(self.experts, ExpertMlps):
            return True
        return self.experts.group(largest) == 1

    def _limit(self, n: int) -> int | None:
        """The capacity C = ⌊N·capacity·k / e⌋ (at most N: an expert is chosen once per
        token), or None without a limit; `moe.capacity_rows`, as the cost rule counts it
        (the capacity read as the decimal the spec wrote, integer arithmetic, so an exported
        program keeps it symbolic in the batch size)."""
        if self.capacity <= 0:
            return None
        return torch.sym_min(capacity_rows(n, self.capacity, self.top_k, self.e), n)

    def _exact_rows(self, tokens: torch.Tensor, order: torch.Tensor, gates: torch.Tensor,
                    sizes: list[int]) -> torch.Tensor:
        """Expert i on exactly its sizes[i] assignments (no capacity, nothing dropped): the
        tokens gathered once in sorted order, each expert's outputs weighted by their gates
        and added into their tokens — no padding, and no output buffer to assemble."""
        source = order // self.top_k  # (N·k,) the token of each sorted assignment
        outs = self._run(list(tokens.index_select(0, source).split(sizes)))
        y = tokens.new_zeros(len(tokens), self.d)  # (N, d)
        for out, token, gate in zip(outs, source.split(sizes), gates[order].split(sizes),
                                    strict=True):
            y.index_add_(0, token, out * gate.unsqueeze(-1))  # in place: no copy of y per expert
        return y

    def _experts(self, tokens: torch.Tensor, where: torch.Tensor, keep: torch.Tensor | None,
                 rows: int, group: int) -> torch.Tensor:
        """Run each expert on a block of `rows` rows (the blocks one after the other) holding
        the tokens of its kept assignments at their rows `where`, `group` experts per call,
        and read every assignment's output back from its row. With a capacity (`keep`
        given) dropped assignments read a spare zero row instead. Each call gathers its rows
        straight from `tokens` (padding rows take token 0, whose outputs nobody reads): no
        zero-filled buffer is written, then scattered into."""
        spare = self.e * rows
        if keep is not None:
            where = torch.where(keep, where, spare)  # (N·k,)
        token = torch.arange(where.shape[0], device=where.device) // self.top_k
        source = where.new_zeros(spare + 1).index_put((where,), token)  # (e·rows + 1,)
        blocks: list[torch.Tensor] = []
        for first in range(0, self.e, group):
            g = min(group, self.e - first)
            x = tokens.index_select(0, source[first * rows:(first + g) * rows])  # (g·rows, d)
            blocks.append(x if group == 1 else x.view(g, rows, self.d))
        parts = [y.reshape(-1, self.d) for y in self._run(blocks)]
        if keep is not None:
            parts.append(tokens.new_zeros(1, self.d))
        out = parts[0] if len(parts) == 1 else torch.cat(parts)  # (e·rows [+ 1], d)
        return out.index_select(0, where)

    def _run(self, blocks: list[torch.Tensor]) -> list[torch.Tensor]:
        """The experts on their blocks of rows: batched `mlp` experts in one call, or the
        generic fallback's experts one call each."""
        if isinstance(self.experts, ExpertMlps):
            return self.experts(blocks)
        layers: nn.ModuleList = self.experts  # type: ignore[assignment]
        return [layer(x) for layer, x in zip(layers, blocks, strict=True)]
