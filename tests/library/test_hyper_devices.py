"""The hyper-connection sites off the CPU. The C kernels are CPU-only, so on a GPU every site
takes torch's path (hyper_fused.py, hyper_fused_site.py, the maps' torch graph). CI has no GPU:
these tests train each site on the meta device, with a dispatch mode that checks every op's
tensor operands are on one device (a 0-dim CPU scalar excepted, as CUDA allows), so a tensor the
path made on the CPU — a constant basis, a cached stand-in — fails here as it would there."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

import archc
from archc.library import hyper_native
from archc.library.hyper_connections_modules import Connection, depth_connection

MIXES = [("hc", {}, 4), ("hc", {"dynamic": True}, 4), ("mhc", {"iters": 5}, 4),
         ("mhc_lite", {}, 3), ("kromhc", {}, 4), ("shc", {}, 4), ("shc", {}, 5),
         ("mhc", {}, 1)]
META = torch.device("meta")
CROSSING = {torch.ops.aten._to_copy.default, torch.ops.aten.copy_.default}
"""Ops whose job is to move a tensor between devices."""


class OneDevice(TorchDispatchMode):
    """Fails an op given tensors on two devices (the meta device's kernels do not all check)."""

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None
                           ) -> Any:
        if func not in CROSSING:
            devices = {t.device for t in tree_leaves((args, kwargs or {}))
                       if isinstance(t, torch.Tensor) and not (t.device.type == "cpu"
                                                               and t.dim() == 0)}
            assert len(devices) <= 1, f"{func} mixes devices {sorted(map(str, devices))}"
        return func(*args, **(kwargs or {}))


def test_the_mode_catches_a_cpu_operand() -> None:
    with OneDevice(), pytest.raises(AssertionError, match="mixes devices"):
        torch.empty(3, 3, device=META) @ torch.ones(3, 3)  # meta's matmul alone would pass


@pytest.mark.parametrize(("mix", "hp", "n"), MIXES)
def test_a_site_trains_off_the_cpu(mix: str, hp: dict, n: int) -> None:
    site = Connection(mix, n, 8, **hp).to(META)
    h = torch.empty(2, 3, n, 8, device=META, requires_grad=True)
    assert not hyper_native.usable(h), "meta tensors take torch's path"
    with OneDevice():
        x, mixed, post = site(h)
        out = depth_connection(mixed, post, x * 2)
        out.backward(torch.ones_like(out))
    assert out.shape == h.shape and h.grad is not None and h.grad.device == META
    assert all(p.grad is not None and p.grad.device == META
               for p in site.parameters() if p.requires_grad)


@pytest.mark.parametrize(("mix", "hp", "n"), MIXES[:3])
def test_a_site_handed_its_depth_connection_trains_off_the_cpu(mix: str, hp: dict,
                                                               n: int) -> None:
    site = Connection(mix, n, 8, **hp).to(META)
    mixed = torch.empty(2, 3, n, 8, device=META, requires_grad=True)
    post = torch.empty(2, 3, n, device=META, requires_grad=True)
    y = torch.empty(2, 3, 8, device=META, requires_grad=True)
    with OneDevice():
        outs = site(mixed, post, y)
        torch.autograd.backward(outs, [torch.ones_like(o) for o in outs])
    assert all(t.grad is not None and t.grad.device == META for t in (mixed, post, y))


@pytest.mark.parametrize("mix", ["hc", "hc(dynamic = true)", "mhc", "mhc_lite", "kromhc", "shc"])
def test_a_compiled_hyper_network_trains_off_the_cpu(mix: str) -> None:
    """The compiler's graph (its sites handed their depth connections, the collapse) keeps no
    CPU constant either: the whole network moves with `.to`."""
    text = ("space lm {\n input tokens: int[8]\n embedding(vocab = 32, dim = 16)\n"
            f" hyper(streams = 4, mix = {mix}) {{\n"
            "  repeat 2 { residual { layernorm; mlp(ratio = 2) } }\n }\n"
            " layernorm\n lm_head(32)\n}\n")
    gm = archc.compile(archc.loads(text, name="lm.arch"), {}).module.to(META)
    tokens = torch.zeros(2, 8, dtype=torch.long, device=META)
    with OneDevice():
        out = gm(tokens)
        out.backward(torch.ones_like(out))
    assert out.shape == (2, 8, 32)
    assert all(p.grad is not None and p.grad.device == META
               for p in gm.parameters() if p.requires_grad)
