"""The coarse-to-fine generator (--netG local): shapes, the half-size input of G1, gradients,
fixing G1, and a state_dict round trip."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from torch import nn

from models.networks.local_enhancer import GlobalGenerator, LocalEnhancerGenerator, local_size_multiple
from models.norms import norm_spec


def tiny(k: int = 1, n_down: int = 2, norm: str = "instance", dropout: bool = False) -> LocalEnhancerGenerator:
    torch.manual_seed(0)
    return LocalEnhancerGenerator(input_nc=3, output_nc=2, ngf=4, norm=norm_spec(norm), dropout=dropout,
                                  n_local_enhancers=k, n_blocks_global=2, n_blocks_local=1,
                                  n_downsample_global=n_down)


@pytest.mark.parametrize("k, n_down, height, width", [
    (1, 2, 5 * 16, 3 * 16),    # multiple 2**(1+2+1) = 16: odd multiples on both sides
    (2, 1, 7 * 16, 1 * 16),    # two enhancers, multiple 16: G1's deepest map is 7x1 * 2
    (1, 4, 1 * 64, 3 * 64),    # the paper's G1 depth, multiple 64
])
def test_output_and_level_shapes(k: int, n_down: int, height: int, width: int) -> None:
    # Halved k + n_down times, G1's deepest map still has 2 px per side at the smallest input.
    assert local_size_multiple(k, n_down) == 2 ** (k + n_down + 1)
    net = tiny(k, n_down)
    seen: dict[str, tuple[int, ...]] = {}
    net.global_generator.front.register_forward_hook(lambda m, i, o: seen.__setitem__("g1_in", tuple(i[0].shape)))
    net.global_generator.ups[-1].register_forward_hook(lambda m, i, o: seen.__setitem__("g1_out", tuple(o.shape)))
    for n, enhancer in enumerate(net.enhancers):
        enhancer.up.register_forward_hook(lambda m, i, o, n=n: seen.__setitem__(f"g2_{n}", tuple(o.shape)))
    x = torch.randn(2, 3, height, width)
    with torch.no_grad():
        y = net(x)
    assert y.shape == (2, 2, height, width) and y.abs().max() <= 1
    # G1 sees the input shrunk 2**k times and hands back ngf * 2**k channels at that size.
    assert seen["g1_in"] == (2, 3, height >> k, width >> k)
    assert seen["g1_out"] == (2, 4 * 2 ** k, height >> k, width >> k)
    for n in range(k):   # each enhancer doubles the size and halves the width
        assert seen[f"g2_{n}"] == (2, 4 * 2 ** (k - 1 - n), height >> (k - 1 - n), width >> (k - 1 - n))


def test_global_generator_sees_the_2x2_means_of_the_input() -> None:
    net = tiny(1)
    got: list[torch.Tensor] = []
    net.global_generator.front.register_forward_hook(lambda m, i, o: got.append(i[0]))
    x = torch.randn(1, 3, 16, 32)
    with torch.no_grad():
        net(x)
    a = x.numpy()[0]
    means = a.reshape(3, 8, 2, 16, 2).mean(axis=(2, 4))   # numpy oracle: mean of each 2x2 block
    np.testing.assert_allclose(got[0].numpy()[0], means, rtol=0, atol=1e-6)


def test_widths_follow_the_paper_at_its_setting() -> None:
    """ngf 32, one enhancer, G1 with 4 downsamplings and 9 blocks: G2 has 32 filters, G1 64 to
    1024 (pix2pixHD's appendix); the G1 blocks are 9 x 2 convolutions of 1024 x 1024 x 3 x 3."""
    net = LocalEnhancerGenerator(input_nc=3, output_nc=3, ngf=32, norm=norm_spec("instance"))
    g1 = net.global_generator
    assert [m.out_channels for m in g1.modules() if isinstance(m, nn.Conv2d)][:5] == [64, 128, 256, 512, 1024]
    assert len(g1.blocks) == 9 and g1.head is None
    block_weights = sum(p.numel() for b in g1.blocks for p in b.parameters() if p.dim() == 4)
    assert block_weights == 9 * 2 * 1024 * 1024 * 9
    g2 = net.enhancers[0]
    assert g2.front[0][1].out_channels == 32 and len(g2.blocks) == 3 and g2.blocks[0].conv_block[1].in_channels == 64


def test_a_side_off_the_multiple_is_one_clear_error() -> None:
    with pytest.raises(ValueError, match="multiples of 16, got 48x40"):
        tiny(1, 2)(torch.randn(1, 3, 48, 40))


@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_every_parameter_gets_a_gradient(norm: str) -> None:
    net = tiny(2, 1, norm=norm, dropout=True)
    x = torch.randn(2, 3, 16, 32, requires_grad=True)
    net(x).square().mean().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_fixed_global_generator_keeps_its_weights_while_the_enhancer_trains() -> None:
    net = tiny(1, norm="instance")
    before = {k: v.clone() for k, v in net.state_dict().items()}
    net.fix_global(True)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(3):
        optimizer.zero_grad()
        net(torch.randn(2, 3, 16, 16)).square().mean().backward()
        optimizer.step()
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in after if k.startswith("global_generator."))
    assert all(not torch.equal(before[k], after[k]) for k in after if k.startswith("enhancers.") and "weight" in k)
    net.fix_global(False)
    optimizer.zero_grad()
    net(torch.randn(2, 3, 16, 16)).square().mean().backward()
    optimizer.step()
    assert not torch.equal(before["global_generator.front.1.weight"], net.state_dict()["global_generator.front.1.weight"])


def test_state_dict_round_trip_gives_the_same_output() -> None:
    net = tiny(2, 1, norm="batch")
    net.train()
    net(torch.randn(2, 3, 16, 16))   # running statistics away from their initial values
    buffer = io.BytesIO()
    torch.save(net.state_dict(), buffer)
    torch.manual_seed(1)   # a differently initialized twin
    twin = LocalEnhancerGenerator(input_nc=3, output_nc=2, ngf=4, norm=norm_spec("batch"), n_local_enhancers=2,
                                  n_blocks_global=2, n_blocks_local=1, n_downsample_global=1)
    buffer.seek(0)
    twin.load_state_dict(torch.load(buffer, weights_only=True))
    x = torch.randn(1, 3, 32, 16)
    net.eval(), twin.eval()
    with torch.no_grad():
        assert torch.equal(net(x), twin(x))


def test_global_generator_alone_maps_the_full_input() -> None:
    torch.manual_seed(0)
    g1 = GlobalGenerator(input_nc=1, output_nc=3, ngf=4, norm=norm_spec("instance"), n_downsample_global=2,
                         n_blocks_global=1)
    y = g1(torch.randn(2, 1, 12, 20))
    assert y.shape == (2, 3, 12, 20) and y.abs().max() <= 1
