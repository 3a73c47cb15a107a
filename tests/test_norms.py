"""The norm registry: every entry builds for any width, runs on the maps it says, its networks' convs
have a bias exactly when it says, and it has help."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from models.batchnorm import BatchNorm2d
from models.networks import DISCRIMINATORS, GENERATORS, build_discriminator, build_generator
from models.norms import NORMS, default_num_groups, norm_spec
from models.sync_batchnorm import SyncBatchNorm2d

WIDTHS = [1, 3, 4, 8, 48, 64]


@pytest.mark.parametrize("name", NORMS.names())
@pytest.mark.parametrize("channels", WIDTHS)
def test_every_norm_builds_and_runs_for_tiny_and_odd_widths(name: str, channels: int) -> None:
    layer = norm_spec(name).make(channels)
    x = torch.randn(2, channels, 4, 4, requires_grad=True)
    for training in (True, False):
        layer.train(training)
        y = layer(x)
        assert y.shape == x.shape and torch.isfinite(y).all()
    y.sum().backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("name", NORMS.names())
def test_a_norm_runs_on_exactly_the_maps_its_entry_says(name: str) -> None:
    """The innermost U-Net features and a PatchGAN's last maps can be 1x1; the entry's
    min_spatial says whether the norm can take them (instance norm cannot, as in torch)."""
    spec = norm_spec(name)
    layer = spec.make(8)
    assert torch.isfinite(layer(torch.randn(2, 8, 1, spec.min_spatial))).all()
    if spec.min_spatial > 1:
        with pytest.raises(ValueError):
            layer(torch.randn(2, 8, 1, spec.min_spatial - 1))


@pytest.mark.parametrize("name", NORMS.names())
def test_the_conv_before_a_norm_has_a_bias_exactly_when_its_entry_says(name: str) -> None:
    """Every conv of every registered network that the norm directly follows carries a bias iff
    ``conv_bias``: the networks obey the entry."""
    spec = norm_spec(name)
    followed = 0
    nets = [build_generator(g, input_nc=3, output_nc=3, ngf=4, norm=name) for g in GENERATORS.names()]
    nets += [build_discriminator(d, input_nc=6, ndf=4, norm=name) for d in DISCRIMINATORS.names()]
    for net in nets:
        modules = [m for m in net.modules() if not list(m.children())]
        norm_type = type(spec.make(4))
        for conv, after in zip(modules, modules[1:]):
            if isinstance(conv, (nn.Conv2d, nn.ConvTranspose2d)) and type(after) is norm_type:
                followed += 1
                assert (conv.bias is not None) == spec.conv_bias, (net.__class__.__name__, conv)
    assert followed > 0 or name == "none"


def test_every_norm_has_one_line_of_help_and_sync_batch_is_an_alias() -> None:
    assert all(entry.help and "\n" not in entry.help for entry in NORMS)
    assert "sync_batch" in NORMS.choices()
    assert isinstance(norm_spec("sync_batch").make(4), SyncBatchNorm2d)
    batch = norm_spec("batch").make(4)
    assert isinstance(batch, BatchNorm2d) and not isinstance(batch, SyncBatchNorm2d)


@pytest.mark.parametrize("channels, groups", [(1, 1), (3, 3), (8, 8), (32, 32), (48, 24), (64, 32), (100, 25),
                                              (512, 32)])
def test_default_group_count_is_the_largest_divisor_up_to_32(channels: int, groups: int) -> None:
    assert default_num_groups(channels) == groups
    layer = norm_spec("group").make(channels)
    assert isinstance(layer, nn.GroupNorm) and layer.num_groups == groups


def test_layer_norm_normalizes_each_sample_over_channels_height_and_width() -> None:
    layer = norm_spec("layer").make(6)
    x = torch.randn(3, 6, 5, 5) * 4 + torch.arange(6.0).view(1, 6, 1, 1)
    y = layer(x).flatten(1)
    assert torch.allclose(y.mean(dim=1), torch.zeros(3), atol=1e-5)
    assert torch.allclose(y.var(dim=1, unbiased=False), torch.ones(3), atol=1e-3)
    # ... but not per channel, which is what instance norm would do.
    assert not torch.allclose(layer(x).mean(dim=(2, 3)), torch.zeros(3, 6), atol=1e-2)
