"""Every registered generator and discriminator, with every registered norm, builds and trains."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from models.init import INITS, init_weights
from models.networks import DISCRIMINATORS, GENERATORS, build_discriminator, build_generator, size_multiple
from models.networks.multiscale import smallest_logit_side
from models.networks.spec import NetSpec
from models.norms import NORMS


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize("norm", NORMS.names())
@pytest.mark.parametrize("net_g", GENERATORS.names())
def test_generator_forward_backward(net_g: str, norm: str) -> None:
    torch.manual_seed(0)
    side = max(size_multiple(net_g), 16)
    net = build_generator(net_g, input_nc=3, output_nc=2, ngf=4, norm=norm, dropout=True)
    x = torch.randn(2, 3, side, side, requires_grad=True)
    y = net(x)
    assert y.shape == (2, 2, side, side)
    assert y.abs().max() <= 1.0  # tanh output
    y.square().mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert all(p.grad is not None for p in net.parameters())


def logit_sides(spec: NetSpec, side: int) -> list[int]:
    """The side of each scale's logit map for a ``side`` px input, from the spec's fields."""
    n_layers = getattr(spec, "n_layers", None)
    if n_layers is None:   # a D without stride-2 layers (pixel) keeps every pixel
        return [side]
    return [smallest_logit_side(side, n_layers, scales) for scales in range(1, getattr(spec, "num_D", 1) + 1)]


@pytest.mark.parametrize("norm", NORMS.names())
@pytest.mark.parametrize("net_d", DISCRIMINATORS.names())
def test_discriminator_forward_backward(net_d: str, norm: str) -> None:
    torch.manual_seed(0)
    spec = DISCRIMINATORS.spec(net_d, input_nc=4, ndf=4, n_layers=2, norm=norm, num_D=2)
    net = spec.build()
    x = torch.randn(2, 4, 64, 64, requires_grad=True)
    y = net(x)
    # A multiscale D (a spec with num_D) returns one map per scale, finest first.
    sides = logit_sides(spec, 64)
    expected = [(2, 1, s, s) for s in sides] if hasattr(spec, "num_D") else (2, 1, sides[0], sides[0])
    assert ([t.shape for t in y] if isinstance(y, list) else y.shape) == expected
    (sum(t.mean() for t in y) if isinstance(y, list) else y.mean()).backward()
    assert torch.isfinite(x.grad).all()


# Reference counts (tests/fixtures/reference_state_dict_keys.txt), 3 -> 3 channels, ngf = ndf = 64.
@pytest.mark.parametrize("net_g, norm, count", [
    ("unet_256", "batch", 54_413_955),
    ("unet_128", "instance", 41_825_667),
    ("resnet_9blocks", "instance", 11_378_179),
    ("resnet_6blocks", "batch", 7_841_411),
])
def test_generator_parameter_counts_match_reference(net_g: str, norm: str, count: int) -> None:
    assert n_params(build_generator(net_g, input_nc=3, output_nc=3, ngf=64, norm=norm, dropout=True)) == count


@pytest.mark.parametrize("net_d, n_layers, norm, count", [
    ("basic", 3, "batch", 2_768_705),
    ("n_layers", 4, "instance", 6_962_625),
    ("pixel", 3, "batch", 9_024),
])
def test_discriminator_parameter_counts_match_reference(net_d: str, n_layers: int, norm: str, count: int) -> None:
    assert n_params(build_discriminator(net_d, input_nc=6, ndf=64, n_layers=n_layers, norm=norm)) == count


def test_norm_none_keeps_conv_biases() -> None:
    net = build_generator("unet_256", input_nc=3, output_nc=3, ngf=64, norm="none", dropout=True)
    convs = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    assert convs and all(m.bias is not None for m in convs)
    # The reference drops those biases: 54,404,099 parameters; ours has one bias per conv output.
    assert n_params(net) == 54_404_099 + sum(m.bias.numel() for m in convs[:-1])


def test_batch_norm_drops_redundant_conv_biases() -> None:
    net = build_generator("unet_256", input_nc=3, output_nc=3, ngf=8, norm="batch", dropout=True)
    biased = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) and m.bias is not None]
    assert len(biased) == 1  # only the outermost up-convolution, which feeds tanh, not a norm


def test_unet_dropout_only_in_three_inner_decoder_levels() -> None:
    net = build_generator("unet_256", input_nc=3, output_nc=3, ngf=4, norm="batch", dropout=True)
    assert sum(isinstance(m, nn.Dropout) for m in net.modules()) == 3
    net = build_generator("unet_256", input_nc=3, output_nc=3, ngf=4, norm="batch", dropout=False)
    assert not any(isinstance(m, nn.Dropout) for m in net.modules())


def test_unet_stages_are_named() -> None:
    net = build_generator("unet_128", input_nc=3, output_nc=3, ngf=4, norm="batch", dropout=True)
    stages = net.named_stages()
    assert [f"down{i}" for i in range(1, 8)] == [k for k in stages if k.startswith("down")]
    assert len(stages) == 14


@pytest.mark.parametrize("init_type", INITS.names())
def test_init_schemes(init_type: str) -> None:
    torch.manual_seed(0)
    net = init_weights(build_discriminator("basic", input_nc=6, ndf=16, n_layers=3, norm="batch"), init_type, 0.02)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert all(m.bias is None or torch.count_nonzero(m.bias) == 0 for m in convs)
    norm_weights = torch.cat([m.weight for m in net.modules()
                              if not isinstance(m, nn.Conv2d) and getattr(m, "weight", None) is not None])
    assert abs(norm_weights.mean().item() - 1.0) < 0.05 and norm_weights.std().item() < 0.05
    if init_type == "normal":
        assert abs(convs[1].weight.std().item() - 0.02) < 0.002
