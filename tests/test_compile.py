"""--compile for real, once: torch.compile (inductor, C++ kernels built by the system compiler)
of a tiny network on the CPU trains exactly like the eager network.

The other --compile tests stub torch.compile out; this one pays the real price (about a minute
on the busy 2-core CPU, mostly inductor's one-time C++ set-up), so it compiles the smallest
network that still has the layer kinds of ours: conv, instance norm, ReLU, tanh, backward."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from torch import nn

from engine.speed import CompileFallback, compile_network


def test_compiled_tiny_network_trains_like_eager(tmp_path: Path, monkeypatch):
    # A fresh inductor cache: the kernels must be built now, not found from an earlier run.
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    torch.manual_seed(0)
    eager = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.InstanceNorm2d(4, affine=True), nn.ReLU(),
                          nn.Conv2d(4, 3, 3, padding=1), nn.Tanh())
    plain = copy.deepcopy(eager)
    compiled = compile_network(plain, "tiny", "auto", torch.device("cpu"))
    assert isinstance(compiled, CompileFallback) and compiled.mode == "default"
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(2, 3, 16, 16, generator=gen) * 2 - 1
    target = -x   # the negation map
    optimizers = [torch.optim.SGD(net.parameters(), lr=0.5) for net in (eager, plain)]
    curves: list[list[float]] = [[], []]
    for _ in range(3):
        for net, optimizer, curve in zip((eager, compiled), optimizers, curves):
            optimizer.zero_grad()
            loss = (net(x) - target).abs().mean()
            loss.backward()
            optimizer.step()
            curve.append(float(loss.detach()))
    assert not compiled.failed, "torch.compile fell back to eager"
    assert curves[1] == pytest.approx(curves[0], abs=1e-5) and curves[0][-1] < curves[0][0]
    for a, b in zip(eager.parameters(), plain.parameters()):
        assert torch.allclose(a, b, atol=1e-5)
    # Inductor really generated and built C++ kernels (shared objects) with the system compiler.
    assert list((tmp_path / "inductor").rglob("*.so")), "no compiled kernels in the inductor cache"
