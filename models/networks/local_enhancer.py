"""The coarse-to-fine generator of pix2pixHD (Wang et al. 2018, section 3.2).

A global generator G1 (a front-end, stride-2 downsamplings, residual blocks, upsamplings back
to its input size) works on the input shrunk by 2 per local enhancer. Each local enhancer G2
works at twice the size of the generator below it: its own front-end halves its input, the
coarser generator's last feature map (same size, same width) is added to that, and residual
blocks and one upsampling follow. Only the finest enhancer ends in an RGB head; G1's own head
exists only when it runs alone (``--netG global``), so that the local generator has no
parameters that receive no gradient (which DDP would wait for).

Widths double per level downwards: the finest enhancer has ``ngf`` filters, the next
``2 * ngf``, G1 ``ngf * 2**n_local_enhancers`` at its input size and twice that per
downsampling (the paper's setting, ngf 32 with one enhancer: 32 in G2; 64 to 1024 in G1).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch.nn.functional as F
from torch import Tensor, nn

from models.networks.checkpointing import run_stage
from models.networks.resnet import ResnetBlock
from models.networks.spec import Flag, GeneratorSpec, arch_field
from models.networks.upsample import DEFAULT_UPSAMPLE, make_upsampler
from models.norms import NormSpec


def _front(input_nc: int, ngf: int, norm: NormSpec) -> nn.Sequential:
    """7x7 reflection-padded conv, full size: (N, input_nc, H, W) -> (N, ngf, H, W)."""
    return nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7, bias=norm.conv_bias), norm.make(ngf),
                         nn.ReLU(True))


def _down(in_nc: int, norm: NormSpec) -> nn.Sequential:
    """(N, C, H, W) -> (N, 2C, H/2, W/2)."""
    return nn.Sequential(nn.Conv2d(in_nc, in_nc * 2, 3, stride=2, padding=1, bias=norm.conv_bias),
                         norm.make(in_nc * 2), nn.ReLU(True))


def _up(in_nc: int, norm: NormSpec, upsample: str) -> nn.Sequential:
    """(N, C, H, W) -> (N, C/2, 2H, 2W)."""
    bias = norm.conv_bias
    return nn.Sequential(make_upsampler(upsample, in_nc, in_nc // 2, bias, lambda: nn.ConvTranspose2d(
        in_nc, in_nc // 2, 3, stride=2, padding=1, output_padding=1, bias=bias)), norm.make(in_nc // 2), nn.ReLU(True))


def _head(ngf: int, output_nc: int) -> nn.Sequential:
    """(N, ngf, H, W) -> (N, output_nc, H, W) in [-1, 1]. Feeds tanh, not a norm: keeps its bias."""
    return nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Tanh())


class GlobalGenerator(nn.Module):
    """G1: input sides must be multiples of ``2**n_downsample``."""

    def __init__(self, *, input_nc: int, output_nc: int, ngf: int, norm: NormSpec, dropout: bool = False,
                 upsample: str = DEFAULT_UPSAMPLE, n_downsample_global: int = 4, n_blocks_global: int = 9,
                 with_head: bool = True) -> None:
        super().__init__()
        d = n_downsample_global
        self.front = _front(input_nc, ngf, norm)                                      # (N, ngf, H, W)
        self.downs = nn.ModuleList(_down(ngf * 2 ** i, norm) for i in range(d))
        deepest = ngf * 2 ** d                                                      # (N, deepest, H/2**d, W/2**d)
        # torch's nn.Conv2d (NCHW under bf16 too): these layers' 3x3 weights (1024-2048 channels) dwarf
        # their maps, and channels_last inputs made the whole step slower, 5.6 against 4.4 s at 256 px
        # (benchmarks/README.md, "Channels-last under bf16").
        self.blocks = nn.ModuleList(ResnetBlock(deepest, norm, dropout, conv=nn.Conv2d)
                                    for _ in range(n_blocks_global))
        self.ups = nn.ModuleList(_up(deepest // 2 ** i, norm, upsample) for i in range(d))
        self.head = _head(ngf, output_nc) if with_head else None                     # (N, output_nc, H, W)
        self.grad_checkpoint = False

    def stages(self) -> list[nn.Module]:
        return [self.front, *self.downs, *self.blocks, *self.ups]

    def features(self, x: Tensor) -> Tensor:
        """The last feature map, before the head: (N, ngf, H, W)."""
        for stage in self.stages():
            x = run_stage(stage, x, self.grad_checkpoint)
        return x

    def forward(self, x: Tensor) -> Tensor:
        if self.head is None:
            raise RuntimeError("this global generator is part of a local enhancer generator and has no head")
        return run_stage(self.head, self.features(x), self.grad_checkpoint)

    def set_grad_checkpoint(self, enabled: bool) -> None:
        self.grad_checkpoint = enabled


class LocalEnhancer(nn.Module):
    """One G2 level at input size (H, W); the coarser generator's features are (N, 2*ngf, H/2, W/2)."""

    def __init__(self, *, input_nc: int, output_nc: int, ngf: int, norm: NormSpec, dropout: bool, upsample: str,
                 n_blocks: int, with_head: bool) -> None:
        super().__init__()
        self.front = nn.Sequential(_front(input_nc, ngf, norm), _down(ngf, norm))   # (N, 2*ngf, H/2, W/2)
        # NCHW like the global generator it adds its features to: a layout change between the two
        # would cost a reorder of every map that crosses it.
        self.blocks = nn.ModuleList(ResnetBlock(ngf * 2, norm, dropout, conv=nn.Conv2d) for _ in range(n_blocks))
        self.up = _up(ngf * 2, norm, upsample)                                      # (N, ngf, H, W)
        self.head = _head(ngf, output_nc) if with_head else None
        self.grad_checkpoint = False

    def features(self, x: Tensor, coarser: Tensor) -> Tensor:
        y = run_stage(self.front, x, self.grad_checkpoint) + coarser                 # (N, 2*ngf, H/2, W/2)
        for block in self.blocks:
            y = run_stage(block, y, self.grad_checkpoint)
        return run_stage(self.up, y, self.grad_checkpoint)                            # (N, ngf, H, W)


class LocalEnhancerGenerator(nn.Module):
    """G1 at 1/2**K of the input size, then K local enhancers, coarsest first (K =
    ``n_local_enhancers``). Input sides must be multiples of ``local_size_multiple(...)``."""

    def __init__(self, *, input_nc: int, output_nc: int, ngf: int, norm: NormSpec, dropout: bool = False,
                 upsample: str = DEFAULT_UPSAMPLE, n_local_enhancers: int = 1, n_blocks_global: int = 9,
                 n_blocks_local: int = 3, n_downsample_global: int = 4) -> None:
        super().__init__()
        if n_local_enhancers < 1:
            raise ValueError(f"--n_local_enhancers must be at least 1, got {n_local_enhancers}")
        k = n_local_enhancers
        self.size_multiple = local_size_multiple(k, n_downsample_global)
        self.global_generator = GlobalGenerator(input_nc=input_nc, output_nc=output_nc, ngf=ngf * 2 ** k, norm=norm,
                                                dropout=dropout, upsample=upsample,
                                                n_downsample_global=n_downsample_global,
                                                n_blocks_global=n_blocks_global, with_head=False)
        self.enhancers = nn.ModuleList(
            LocalEnhancer(input_nc=input_nc, output_nc=output_nc, ngf=ngf * 2 ** (k - 1 - i), norm=norm,
                          dropout=dropout, upsample=upsample, n_blocks=n_blocks_local, with_head=i == k - 1)
            for i in range(k))

    def forward(self, x: Tensor) -> Tensor:
        height, width = x.shape[-2:]
        if height % self.size_multiple or width % self.size_multiple:
            raise ValueError(f"--netG local: input sides must be multiples of {self.size_multiple}, "
                             f"got {height}x{width}")
        # pyramid[i]: (N, C, H/2**i, W/2**i); exact 2x2 means, so every level sees the same image.
        pyramid = [x]
        for _ in self.enhancers:
            pyramid.append(F.avg_pool2d(pyramid[-1], 2))
        y = self.global_generator.features(pyramid[-1])      # (N, ngf*2**K, H/2**K, W/2**K)
        for level, enhancer in enumerate(self.enhancers):
            y = enhancer.features(pyramid[-2 - level], y)     # twice the size, half the width
        finest = self.enhancers[-1]
        assert finest.head is not None
        return run_stage(finest.head, y, finest.grad_checkpoint)   # (N, output_nc, H, W)

    def set_grad_checkpoint(self, enabled: bool) -> None:
        self.global_generator.set_grad_checkpoint(enabled)
        for enhancer in self.enhancers:
            enhancer.grad_checkpoint = enabled

    def fix_global(self, fixed: bool) -> None:
        """Keep G1's parameters as they are (no gradient, so no optimizer step touches them and
        its activations need not be kept) or let them train again."""
        for p in self.global_generator.parameters():
            p.requires_grad_(not fixed)


def global_size_multiple(n_downsample_global: int) -> int:
    """G1 alone: ``n_downsample_global`` halvings, and 2 px or more at the deepest map."""
    return 2 ** (n_downsample_global + 1)


def local_size_multiple(n_local_enhancers: int, n_downsample_global: int) -> int:
    """Each enhancer halves the input for the level below and G1 halves it ``n_downsample_global``
    times; one factor 2 more keeps G1's deepest map at 2 px or more, which the reflection padding
    of its residual blocks needs (64 for the paper's one enhancer and 4 downsamplings)."""
    return 2 ** (n_local_enhancers + n_downsample_global + 1)


def _blocks_global() -> int:
    return arch_field(9, Flag("--netG local / global: residual blocks of the global generator", minimum=1))


def _downsample_global() -> int:
    return arch_field(4, Flag("--netG local / global: stride-2 downsamplings of the global generator", minimum=1))


@dataclass(frozen=True)
class LocalEnhancerSpec(GeneratorSpec):
    """``--netG local``. The defaults are the paper's (with ``--ngf 32`` its widths too)."""
    network: ClassVar = LocalEnhancerGenerator
    family: ClassVar[str] = "local"
    n_local_enhancers: int = arch_field(1, Flag("--netG local: local enhancers K, each doubling the resolution; "
                                                "the global generator sees the input shrunk 2**K times", minimum=1))
    n_blocks_global: int = _blocks_global()
    n_blocks_local: int = arch_field(3, Flag("--netG local: residual blocks of each local enhancer", minimum=1))
    n_downsample_global: int = _downsample_global()

    @property
    def size_multiple(self) -> int:
        return local_size_multiple(self.n_local_enhancers, self.n_downsample_global)

    def global_fields(self) -> dict[str, object]:
        """What a ``--netG global`` generator must have been trained with to serve as this G1
        (``--init_global_from``); dropout and output channels leave its weights' shapes alone."""
        return {"input_nc": self.input_nc, "ngf": self.ngf * 2 ** self.n_local_enhancers, "norm": self.norm,
                "upsample": self.upsample, "n_downsample_global": self.n_downsample_global,
                "n_blocks_global": self.n_blocks_global}


@dataclass(frozen=True)
class GlobalSpec(GeneratorSpec):
    """``--netG global``: G1 alone, with its head, to train at half size before ``--netG local``
    (``--init_global_from``), as the paper trains its global generator first."""
    network: ClassVar = GlobalGenerator
    family: ClassVar[str] = "global"
    n_blocks_global: int = _blocks_global()
    n_downsample_global: int = _downsample_global()

    @property
    def size_multiple(self) -> int:
        return global_size_multiple(self.n_downsample_global)
