"""The multiscale PatchGAN of pix2pixHD (Wang et al. 2018): several PatchGANs of one design,
each judging the conditional pair at its own scale (full size, 1/2, 1/4).

The coarse scales see a larger share of the image through the same 70x70 receptive field,
so they judge global structure while the full-scale D judges texture. Between scales the
pair is halved by a 3x3 average pool (stride 2, padding 1, padding not counted), as in
pix2pixHD. Every D's intermediate features are available for feature matching.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from models.networks.patchgan import NLayerDiscriminator, n_layers_field
from models.networks.spec import DiscriminatorSpec, Flag, arch_field
from models.norms import NormSpec
from util.errors import OptionError

MAX_SCALES = 3


def smallest_logit_side(side: int, n_layers: int, num_D: int) -> int:
    """The side of the coarsest scale's logit map for a ``side`` px input (below 1: too small).
    Each 3x3 pool and each stride-2 4x4 conv (padding 1) halves, rounding down; the two final
    stride-1 4x4 convs take one pixel each."""
    for _ in range(num_D - 1):
        side = (side - 1) // 2 + 1
    for _ in range(n_layers):
        side //= 2
    return side - 2


class MultiscaleDiscriminator(nn.Module):
    """``forward`` returns one logit map per scale, finest first; ``scale_features`` returns,
    per scale, the output of every stage (the last being that scale's logits)."""

    def __init__(self, input_nc: int, ndf: int, n_layers: int, norm: NormSpec, num_D: int) -> None:
        super().__init__()
        if not 1 <= num_D <= MAX_SCALES:
            raise OptionError(f"--num_D must be between 1 and {MAX_SCALES}, got {num_D}")
        self.scales = nn.ModuleList(NLayerDiscriminator(input_nc, ndf, n_layers, norm) for _ in range(num_D))
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)

    def _inputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        inputs = [x]
        for _ in range(len(self.scales) - 1):
            inputs.append(self.downsample(inputs[-1]))
        return inputs

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [d(xi) for d, xi in zip(self.scales, self._inputs(x))]

    def scale_features(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        return [d.scale_features(xi)[0] for d, xi in zip(self.scales, self._inputs(x))]

    def named_stages(self) -> dict[str, nn.Module]:
        return {f"D{s}_{name}": m for s, d in enumerate(self.scales, 1) for name, m in d.named_stages().items()}


@dataclass(frozen=True)
class MultiscaleSpec(DiscriminatorSpec):
    network: ClassVar = MultiscaleDiscriminator
    family: ClassVar[str] = "multiscale"
    n_layers: int = n_layers_field()
    num_D: int = arch_field(2, Flag(f"scales of --netD multiscale (1 to {MAX_SCALES}): full size, 1/2, 1/4",
                                    minimum=1, maximum=MAX_SCALES))
