"""Normalization layers by name.

Each entry states whether the convolution in front of it needs its own bias. A norm that
re-centres every channel (batch, instance, ...) makes a conv bias redundant; with ``none``
the conv keeps its bias (the classic reference drops it there too, which silently removes
the only per-channel offset the network has).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from torch import nn

from util.registry import Registry

NormLayer = Callable[[int], nn.Module]


@dataclass(frozen=True)
class NormSpec:
    make: NormLayer          # num_channels -> module
    conv_bias: bool          # does the conv before this norm need a bias?


NORMS: Registry[NormSpec] = Registry("--norm")

NORMS.add("batch", NormSpec(lambda c: nn.BatchNorm2d(c), conv_bias=False),
          help="batch statistics while training, running statistics in eval mode")
NORMS.add("instance", NormSpec(lambda c: nn.InstanceNorm2d(c, affine=False, track_running_stats=False),
                               conv_bias=True),
          help="per-image, per-channel statistics; no learned scale, no running stats")
NORMS.add("none", NormSpec(lambda c: nn.Identity(), conv_bias=True),
          help="no normalization; convs keep their bias")


def norm_spec(name: str) -> NormSpec:
    return NORMS.get(name)
