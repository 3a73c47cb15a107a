"""The norm registry: every entry builds for any width, says whether convs need a bias, has help."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from models.batchnorm import BatchNorm2d
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


@pytest.mark.parametrize("name", [n for n in NORMS.names() if n != "instance"])
def test_norms_accept_a_one_by_one_map(name: str) -> None:
    """The innermost U-Net features and a PatchGAN's last maps can be 1x1 (instance norm has
    no statistics of a single value and is the one exception, as in torch)."""
    layer = norm_spec(name).make(8)
    y = layer(torch.randn(2, 8, 1, 1))
    assert torch.isfinite(y).all()


def test_conv_bias_is_stated_per_norm() -> None:
    assert {entry.name: entry.obj.conv_bias for entry in NORMS} == {
        "batch": False, "syncbatch": False, "instance": True, "group": False, "layer": False, "none": True}


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
