"""--grad_checkpoint: the same outputs, gradients and batch-norm statistics as without it."""
from __future__ import annotations

import copy
from typing import Callable

import pytest
import torch
from torch import nn

from models.networks.local_enhancer import LocalEnhancerGenerator
from models.networks.resnet import ResnetGenerator
from models.networks.unet import UnetGenerator
from models.norms import norm_spec

# Batch norm (running statistics) and dropout (random masks) are what a recomputation could change.
BUILDERS: dict[str, Callable[[], nn.Module]] = {
    "unet": lambda: UnetGenerator(3, 2, 5, 4, norm_spec("batch"), dropout=True),
    "unet_deep": lambda: UnetGenerator(3, 2, 7, 4, norm_spec("batch"), dropout=True),
    "resnet": lambda: ResnetGenerator(3, 2, 2, 4, norm_spec("batch"), dropout=True),
    "local": lambda: LocalEnhancerGenerator(input_nc=3, output_nc=2, ngf=4, norm=norm_spec("batch"), dropout=True,
                                            n_local_enhancers=2, n_blocks_global=2, n_blocks_local=2,
                                            n_downsample_global=2),
}
SIDES = {"unet": (64, 32), "unet_deep": (128, 128), "resnet": (32, 24), "local": (64, 96)}


def run(net: nn.Module, x: torch.Tensor, steps: int = 2) -> tuple[list[torch.Tensor], dict[str, torch.Tensor]]:
    """Outputs of ``steps`` forward/backward passes (the same dropout seed for both variants),
    then the gradients accumulated over them."""
    outputs = []
    for step in range(steps):
        torch.manual_seed(100 + step)
        y = net(x)
        (y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
        outputs.append(y.detach())
    return outputs, {name: p.grad.clone() for name, p in net.named_parameters()}


@pytest.mark.parametrize("family", BUILDERS)
def test_checkpointed_generator_matches_the_plain_one(family: str) -> None:
    torch.manual_seed(0)
    plain = BUILDERS[family]().train()
    checkpointed = copy.deepcopy(plain)
    checkpointed.set_grad_checkpoint(True)
    h, w = SIDES[family]
    x = torch.randn(2, 3, h, w)
    out_a, grads_a = run(plain, x)
    out_b, grads_b = run(checkpointed, x)
    for a, b in zip(out_a, out_b):
        torch.testing.assert_close(b, a, rtol=0, atol=1e-6)
    for name, grad in grads_a.items():
        torch.testing.assert_close(grads_b[name], grad, rtol=1e-6, atol=1e-6, msg=name)
    # Running statistics updated once per forward, not again by the recomputation.
    for (name, a), b in zip(plain.named_buffers(), checkpointed.buffers()):
        assert torch.equal(a, b), name
    assert any(n.endswith("num_batches_tracked") and int(t) == 2 for n, t in plain.named_buffers())


def test_checkpointing_keeps_fewer_tensors_for_backward() -> None:
    """What the saving rests on: the tensors autograd keeps between forward and backward (counted
    with saved-tensor hooks) take far fewer bytes with checkpointing."""
    torch.manual_seed(0)
    x = torch.randn(1, 3, 64, 64)

    def saved_bytes(enabled: bool) -> int:
        net = BUILDERS["local"]()
        net.set_grad_checkpoint(enabled)
        total = 0

        def pack(t: torch.Tensor) -> torch.Tensor:
            nonlocal total
            total += t.numel() * t.element_size()
            return t
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            net(x)
        return total
    assert saved_bytes(True) < 0.5 * saved_bytes(False)


def test_no_checkpointing_without_gradients() -> None:
    """Inference (no_grad) runs the plain forward: nothing is recomputed, outputs identical."""
    torch.manual_seed(0)
    net = BUILDERS["unet"]().eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        plain = net(x)
        net.set_grad_checkpoint(True)
        assert torch.equal(net(x), plain)
