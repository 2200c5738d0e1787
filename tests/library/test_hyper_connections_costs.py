"""The torch-free cost rules of a hyper-connection site against the modules and the papers:
each paper's parameter formula == Σ numel of the Connection == `site_params`, and `site_flops`
(Connection + depth_connection) / `collapse_flops` == what torch's flop counter counts on a
forward."""

from __future__ import annotations

import math

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from archc.library.hyper_connections import (
    collapse_flops,
    collapse_params,
    res_coefficients,
    site_flops,
    site_params,
)
from archc.library.hyper_connections_modules import Collapse, Connection, depth_connection


def paper_params(mix: str, hp: dict, n: int, c: int) -> int:
    """Per-site counts as the papers (research/blocks.md §2.2-6.2) state them. The mHC-lite,
    KromHC and sHC references keep a separate RMSNorm weight (n·C) that we absorb into the
    projection, as the mHC paper does, hence the - n·C."""
    log2 = int(math.log2(n)) if n & (n - 1) == 0 else 0
    return {
        "hc": n * (n + 2) + (c * (n + 2) + 2 if hp.get("dynamic") else 0),
        "mhc": n * c * (n * n + 2 * n) + n * n + 2 * n + 3,
        "mhc_lite": n * c * (math.factorial(n) + 2 * n + 1) + math.factorial(n) + 2 * n + 3,
        "kromhc": n * c * (2 * log2 + 2 * n + 1) + 2 * log2 + 2 * n + 3,
        "shc": n * c * (2 * n + (n - 1) ** 2 + 1) + 2 * n + (n - 1) ** 2 + 7,
    }[mix] - (n * c if mix in ("mhc_lite", "kromhc", "shc") else 0)


SITES = [("hc", {}), ("hc", {"dynamic": True}), ("mhc", {"iters": 5}), ("mhc_lite", {}),
         ("kromhc", {}), ("shc", {})]
STREAMS = (1, 2, 3, 4)


def _cases() -> list[tuple[str, dict, int]]:
    return [(mix, hp, n) for mix, hp in SITES for n in STREAMS
            if not (mix == "kromhc" and n == 3)]


@pytest.mark.parametrize(("mix", "hp", "n"), _cases())
def test_parameter_counts_agree(mix: str, hp: dict, n: int) -> None:
    site = Connection(mix, n, 12, **hp)
    numel = sum(p.numel() for p in site.parameters())
    assert numel == site_params(mix, hp, n, 12) == paper_params(mix, hp, n, 12)


def test_the_papers_worked_examples() -> None:
    """n = 4, C = 512 (blocks.md): HC static 24, DHC 3 098 (OLMo: no norm parameters), mHC
    49 179; mHC-lite 67 619, KromHC 26 639, sHC 36 888 with their separate norm weight."""
    counts = [site_params(m, h, 4, 512) for m, h in SITES]
    assert counts == [24, 3098, 49179, 67619 - 2048, 26639 - 2048, 36888 - 2048]


@pytest.mark.parametrize(("mix", "hp", "n"), _cases())
def test_flops_are_what_the_flop_counter_counts(mix: str, hp: dict, n: int) -> None:
    """Counted on the inference forward: the maths as separate ops (while training, dynamic hc's
    fused site adds one matmul column, 2·n·d per position, to read the streams' means)."""
    site = Connection(mix, n, 12, **hp)
    h, y = torch.randn(3, 5, n, 12), torch.randn(3, 5, 12)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        _, mixed, post = site(h)
        depth_connection(mixed, post, y)
    assert counter.get_total_flops() == 3 * site_flops(mix, hp, n, 12, tokens=5)


@pytest.mark.parametrize("how", ["sum", "head"])
@pytest.mark.parametrize("n", [1, 4])
def test_collapse_costs(how: str, n: int) -> None:
    collapse = Collapse(n, 12, how)
    assert sum(p.numel() for p in collapse.parameters()) == collapse_params(how, n, 12)
    with FlopCounterMode(display=False) as counter:
        collapse(torch.randn(3, 5, n, 12))
    assert counter.get_total_flops() == 3 * collapse_flops(how, n, 12, tokens=5)


def test_res_coefficients_and_errors() -> None:
    assert [res_coefficients(m, 4) for m in ("hc", "mhc", "mhc_lite", "kromhc", "shc")] == [
        0, 16, 24, 4, 9]
    with pytest.raises(ValueError, match="power of two"):
        site_params("kromhc", {}, 6, 8)
    with pytest.raises(ValueError, match="5040 coefficients"):
        site_flops("mhc_lite", {}, 7, 8, 1)
    with pytest.raises(ValueError, match="unknown collapse"):
        collapse_params("max", 2, 8)
