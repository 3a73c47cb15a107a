"""Normalization layers by name.

Each entry states whether the convolution in front of it needs its own bias. Batch norm
re-centres every channel and so cancels a conv bias exactly; group and layer norm cancel the
part shared by a group and supply the per-channel offset with their own shift (beta), so the
conv bias is dropped there too. Instance norm (no affine) cancels it exactly as well, but
keeps it: the reference networks have those biases, and their checkpoints must load. With
``none`` the conv keeps its bias (the classic reference drops it there too, which silently
removes the only per-channel offset the network has).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from torch import nn

from models.batchnorm import BatchNorm2d
from models.sync_batchnorm import SyncBatchNorm2d
from util.registry import Registry

NormLayer = Callable[[int], nn.Module]

MAX_GROUPS = 32  # the GroupNorm paper's default


@dataclass(frozen=True)
class NormSpec:
    make: NormLayer          # num_channels -> module
    conv_bias: bool          # does the conv before this norm need a bias?
    # The fewest values per image and channel it normalizes: statistics of a single value are
    # undefined for instance norm (torch refuses a 1x1 map), while the innermost U-Net features
    # and a PatchGAN's last maps can be 1x1.
    min_spatial: int = 1


def default_num_groups(channels: int, max_groups: int = MAX_GROUPS) -> int:
    """The largest divisor of ``channels`` that is at most ``max_groups``.

    Standard widths (64, 128, ..., 512) get exactly 32 groups; a width that 32 does not divide
    gets the nearest smaller count that does (48 -> 24 groups of 2); widths up to 32 get one
    channel per group (instance norm with a learned scale), and 1 channel one group.
    """
    if channels < 1:
        raise ValueError(f"--norm group: the channel count must be positive, got {channels}")
    return next(g for g in range(min(max_groups, channels), 0, -1) if channels % g == 0)


NORMS: Registry[NormSpec] = Registry("--norm")

NORMS.add("batch", NormSpec(lambda c: BatchNorm2d(c), conv_bias=False),
          help="batch statistics while training; in eval mode running, batch or precise statistics (--bn_eval)")
NORMS.add("syncbatch", NormSpec(lambda c: SyncBatchNorm2d(c), conv_bias=False), aliases=("sync_batch",),
          help="batch norm whose training statistics pool the global batch of all processes (gloo or nccl)")
NORMS.add("instance", NormSpec(lambda c: nn.InstanceNorm2d(c, affine=False, track_running_stats=False),
                               conv_bias=True, min_spatial=2),
          help="per-image, per-channel statistics; no learned scale, no running stats")
NORMS.add("group", NormSpec(lambda c: nn.GroupNorm(default_num_groups(c), c), conv_bias=False),
          help="per-image statistics over groups of channels (largest divisor of C up to 32 groups)")
NORMS.add("layer", NormSpec(lambda c: nn.GroupNorm(1, c), conv_bias=False),
          help="per-image statistics over all of C, H, W, with a per-channel scale and shift")
NORMS.add("none", NormSpec(lambda c: nn.Identity(), conv_bias=True),
          help="no normalization; convs keep their bias")


def norm_spec(name: str) -> NormSpec:
    return NORMS.get(name)
