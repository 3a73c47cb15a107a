"""models/networks/conv.py under concurrency: requests served on threads (as serve.py does)
give exactly the outputs and gradients of the same requests served one after another, while
some of them take the native kernels and others oneDNN. The oracle is the serial run."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from PIL import Image

from inference.translator import CODECS, Translator
from models.networks.conv import Conv2d, ConvTranspose2d, set_down_max_out_side
from models.networks.unet import UnetGenerator
from models.norms import NORMS

THREADS = 6


@pytest.fixture(scope="module")
def net() -> UnetGenerator:
    # 5 halvings of a 32 px input: feature maps of 16, 8, 4, 2 and 1 px, all small-map layers.
    torch.manual_seed(0)
    g = UnetGenerator(3, 3, num_downs=5, ngf=4, norm=NORMS.get("instance"), dropout=False)
    set_down_max_out_side(g, 8)   # every down convolution with an output up to 8x8 native
    return g.train()


def training_request(net: UnetGenerator, seed: int) -> list[torch.Tensor]:
    """A forward and backward with gradients (the native kernels' path), without touching the
    shared .grad fields."""
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(seed), requires_grad=True)
    y = net(x)
    loss = (y - 0.5).square().mean()
    return [y.detach(), *torch.autograd.grad(loss, [x, *net.parameters()])]


def translation_request(translator: Translator, seed: int) -> list[torch.Tensor]:
    """A translation without gradients (oneDNN's path), through the whole inference pipeline."""
    pixels = np.random.default_rng(seed).integers(0, 256, (40, 24, 3), dtype=np.uint8)
    return [torch.from_numpy(np.asarray(translator(Image.fromarray(pixels))).copy())]


def test_concurrent_requests_equal_serial_ones(net):
    kinds = [type(m) for m in net.modules()]
    assert Conv2d in kinds and ConvTranspose2d in kinds
    translator = Translator(net, torch.device("cpu"), CODECS.get("rgb"), 3, 3, size_multiple=32)
    requests = [(lambda s=seed: training_request(net, s)) if seed % 2 else (lambda s=seed: translation_request(translator, s))
                for seed in range(4 * THREADS)]
    serial = [request() for request in requests]
    with ThreadPoolExecutor(THREADS) as pool:
        for _ in range(2):
            concurrent = list(pool.map(lambda request: request(), requests))
            for got, expected in zip(concurrent, serial):
                assert all(torch.equal(a, b) for a, b in zip(got, expected))
    assert torch.backends.mkldnn.enabled   # the process-wide switch as it was
    # The native path really ran: in a training request 4 down convolutions (outputs 8 to 1 px)
    # and 4 transposed ones (inputs 1 to 8 px) end in the native Function.
    seen: list[str] = []
    hooks = [m.register_forward_hook(lambda m, args, out: seen.append(type(out.grad_fn).__name__))
             for m in net.modules() if isinstance(m, (Conv2d, ConvTranspose2d))]
    training_request(net, 0)
    for hook in hooks:
        hook.remove()
    assert len(seen) == 10 and sum(name.startswith("_NativeKernelConv") for name in seen) == 8
