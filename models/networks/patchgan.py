"""PatchGAN discriminators: a fully convolutional net whose every output judges one patch.

With n_layers=3 each output sees a 70x70 input patch (the paper's default); the 1x1 "pixel"
variant judges each pixel alone. D is conditional: it sees A and B concatenated on channels.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from models.networks.conv import onednn_conv2d
from models.networks.spec import DiscriminatorSpec, Flag, arch_field
from models.norms import NormSpec
from util.errors import OptionError


# Never the native kernels: they have no second derivative, which a gradient penalty needs.
_conv = onednn_conv2d


class NLayerDiscriminator(nn.Module):
    def __init__(self, input_nc: int, ndf: int, n_layers: int, norm: NormSpec) -> None:
        super().__init__()
        if n_layers < 1:
            raise OptionError(f"--n_layers_D must be at least 1, got {n_layers}")
        bias = norm.conv_bias
        stages: list[nn.Module] = [nn.Sequential(_conv(input_nc, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True))]
        width = ndf
        for n in range(1, n_layers + 1):
            # Stride 2 up to the last layer, which keeps the resolution (stride 1).
            stride = 2 if n < n_layers else 1
            new_width = ndf * min(2 ** n, 8)
            stages.append(nn.Sequential(_conv(width, new_width, 4, stride, 1, bias=bias), norm.make(new_width),
                                        nn.LeakyReLU(0.2, True)))
            width = new_width
        stages.append(_conv(width, 1, 4, 1, 1))  # (N, 1, ~H/2**(n_layers), ~W/...) logits
        self.stages = nn.ModuleList(stages)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for stage in self.stages:
            x = stage(x)
        return x

    def scale_features(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        """Every stage's output (the last is the logits), as the one scale of this D."""
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return [features]

    def named_stages(self) -> dict[str, nn.Module]:
        return {f"layer{i}": m for i, m in enumerate(self.stages, 1)}


class PixelDiscriminator(nn.Module):
    """1x1 PatchGAN: only colour statistics, no spatial structure."""

    def __init__(self, input_nc: int, ndf: int, norm: NormSpec) -> None:
        super().__init__()
        self.net = nn.Sequential(
            _conv(input_nc, ndf, 1), nn.LeakyReLU(0.2, True),
            _conv(ndf, ndf * 2, 1, bias=norm.conv_bias), norm.make(ndf * 2), nn.LeakyReLU(0.2, True),
            _conv(ndf * 2, 1, 1, bias=norm.conv_bias))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def scale_features(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        """The output after each activation, then the logits, as the one scale of this D."""
        features = []
        for layer in self.net:
            x = layer(x)
            if isinstance(layer, nn.LeakyReLU):
                features.append(x)
        return [features + [x]]

    def named_stages(self) -> dict[str, nn.Module]:
        return {f"layer{i}": m for i, m in enumerate(self.net, 1)}


def n_layers_field() -> int:
    return arch_field(3, Flag("layers of D when --netD n_layers or multiscale", name="n_layers_D", minimum=1))


@dataclass(frozen=True)
class NLayerSpec(DiscriminatorSpec):
    network: ClassVar = NLayerDiscriminator
    family: ClassVar[str] = "patchgan"
    n_layers: int = n_layers_field()   # the preset basic fixes 3


@dataclass(frozen=True)
class PixelSpec(DiscriminatorSpec):
    network: ClassVar = PixelDiscriminator
    family: ClassVar[str] = "pixel"
