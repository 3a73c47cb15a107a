"""The ResNet generator (Johnson et al.): downsample twice, residual blocks, upsample twice.

Its convolutions are oneDNN's throughout, their inputs channels_last under CPU bf16 autocast
(models/networks/layout.py): the probe step of resnet_9blocks at 256 px measured faster so
(benchmarks/README.md, "Channels-last under bf16").
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar

import torch
from torch import nn

from models.networks.checkpointing import run_stage
from models.networks.conv import onednn_conv2d, onednn_conv_transpose2d
from models.networks.spec import GeneratorSpec, arch_field
from models.networks.upsample import DEFAULT_UPSAMPLE, make_upsampler
from models.norms import NormSpec


class ResnetBlock(nn.Module):
    """x + F(x) with F = pad-conv3x3-norm-relu-[dropout]-pad-conv3x3-norm, reflection padded."""

    def __init__(self, dim: int, norm: NormSpec, dropout: bool,
                 conv: Callable[..., nn.Module] = onednn_conv2d) -> None:
        super().__init__()
        bias = norm.conv_bias
        layers: list[nn.Module] = [nn.ReflectionPad2d(1), conv(dim, dim, 3, bias=bias), norm.make(dim),
                                   nn.ReLU(True)]
        if dropout:
            layers.append(nn.Dropout(0.5))
        layers += [nn.ReflectionPad2d(1), conv(dim, dim, 3, bias=bias), norm.make(dim)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """Any input side that is a multiple of 4 works (two stride-2 convs)."""

    def __init__(self, input_nc: int, output_nc: int, n_blocks: int, ngf: int, norm: NormSpec,
                 dropout: bool = False, upsample: str = DEFAULT_UPSAMPLE) -> None:
        super().__init__()
        bias = norm.conv_bias
        self.stem = nn.Sequential(nn.ReflectionPad2d(3), onednn_conv2d(input_nc, ngf, 7, bias=bias), norm.make(ngf),
                                  nn.ReLU(True))
        self.downs = nn.ModuleList(
            nn.Sequential(onednn_conv2d(ngf * m, ngf * m * 2, 3, stride=2, padding=1, bias=bias),
                          norm.make(ngf * m * 2), nn.ReLU(True))
            for m in (1, 2))
        # (N, 4*ngf, H/4, W/4) through the residual blocks.
        self.blocks = nn.ModuleList(ResnetBlock(ngf * 4, norm, dropout) for _ in range(n_blocks))
        self.ups = nn.ModuleList(
            nn.Sequential(make_upsampler(upsample, ngf * m, ngf * m // 2, bias, lambda m=m: onednn_conv_transpose2d(
                ngf * m, ngf * m // 2, 3, stride=2, padding=1, output_padding=1, bias=bias)),
                          norm.make(ngf * m // 2), nn.ReLU(True))
            for m in (4, 2))
        self.head = nn.Sequential(nn.ReflectionPad2d(3), onednn_conv2d(ngf, output_nc, 7), nn.Tanh())
        self.grad_checkpoint = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for stage in self.named_stages().values():
            x = run_stage(stage, x, self.grad_checkpoint)
        return x

    def set_grad_checkpoint(self, enabled: bool) -> None:
        self.grad_checkpoint = enabled

    def named_stages(self) -> dict[str, nn.Module]:
        stages: dict[str, nn.Module] = {"stem": self.stem}
        stages.update({f"down{i}": m for i, m in enumerate(self.downs, 1)})
        stages.update({f"block{i}": m for i, m in enumerate(self.blocks, 1)})
        stages.update({f"up{i}": m for i, m in enumerate(self.ups, 1)})
        stages["head"] = self.head
        return stages


@dataclass(frozen=True)
class ResnetSpec(GeneratorSpec):
    network: ClassVar = ResnetGenerator
    family: ClassVar[str] = "resnet"
    n_blocks: int = arch_field(9)   # set by the presets: resnet_9blocks, resnet_6blocks

    @property
    def size_multiple(self) -> int:
        return 4   # two stride-2 convolutions
