"""The pix2pix U-Net generator: an encoder-decoder whose mirrored layers are joined by skips.

Built recursively from the innermost block outwards, as in the paper's Figure 3: each level
downsamples by 2, hands its features to the level below, and concatenates what comes back
with its own input before upsampling.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from models.networks.checkpointing import run_stage
from models.networks.conv import Conv2d, ConvTranspose2d
from models.networks.layout import cat_channels
from models.networks.spec import Flag, GeneratorSpec, arch_field
from models.networks.upsample import DEFAULT_UPSAMPLE, make_upsampler
from models.norms import NormSpec
from util.errors import OptionError

_KERNEL, _STRIDE, _PAD = 4, 2, 1


class UnetLevel(nn.Module):
    """One level of the U: down -> inner levels -> up, with the level's input skipped past.

    The outermost level has no norm or activation before its down conv and ends in tanh
    instead of a norm; the innermost level has no norm after its down conv (its output is
    1x1 at 256 px and batch norm would zero it at batch 1) and no inner level.
    """

    def __init__(self, outer_nc: int, inner_nc: int, norm: NormSpec, *, input_nc: int | None = None,
                 inner: "UnetLevel | None" = None, outermost: bool = False, dropout: bool = False,
                 upsample: str = DEFAULT_UPSAMPLE) -> None:
        super().__init__()
        self.outermost = outermost
        input_nc = outer_nc if input_nc is None else input_nc
        innermost = inner is None
        bias = norm.conv_bias

        # Not in place: the activated input is also what the skip connection carries (the classic
        # implementation got the same by rewriting its input in place, which hooks cannot see).
        self.down_act = nn.Identity() if outermost else nn.LeakyReLU(0.2)
        down: list[nn.Module] = [Conv2d(input_nc, inner_nc, _KERNEL, _STRIDE, _PAD, bias=bias)]
        if not (outermost or innermost):
            down.append(norm.make(inner_nc))
        self.down = nn.Sequential(*down)
        self.inner = inner

        # Conv2d / ConvTranspose2d: torch's, with a faster backward on tiny feature maps (conv.py).
        # The inner level returns its input concatenated with its output: twice the channels.
        up_in = inner_nc if innermost else inner_nc * 2
        # The outermost layer feeds tanh, not a norm: it keeps its bias whatever the norm.
        up_bias = True if outermost else bias
        upsampler = make_upsampler(upsample, up_in, outer_nc, up_bias, lambda: ConvTranspose2d(
            up_in, outer_nc, _KERNEL, _STRIDE, _PAD, bias=up_bias))
        # The upsampler stays at index 1 of ``up``: reference checkpoints (deconv) address it there.
        up: list[nn.Module] = [nn.ReLU(), upsampler]
        if outermost:
            up.append(nn.Tanh())
        else:
            up.append(norm.make(outer_nc))
            if dropout:
                up.append(nn.Dropout(0.5))
        self.up = nn.Sequential(*up)
        self.grad_checkpoint = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.down_act(x)
        # Checkpointed (--grad_checkpoint), ``down`` and ``up`` keep only their inputs for the
        # backward; not the whole level, whose recomputation would redo every level inside it.
        y = run_stage(self.down, x, self.grad_checkpoint)
        if self.inner is not None:
            y = self.inner(y)
        y = run_stage(self.up, y, self.grad_checkpoint)
        if self.outermost:
            return y
        return cat_channels(x, y)


class UnetGenerator(nn.Module):
    """U-Net with ``num_downs`` halvings: the input side must be a multiple of 2**num_downs.

    Level k (1 = outermost) downsamples to ngf * min(2**(k-1), 8) channels: at ngf=64 the widths
    are 64, 128, 256, 512, 512, ...; the innermost features are (N, 8*ngf, 1, 1) for a 256 px
    input with num_downs=8. Dropout (p=0.5) sits in the decoder levels from the fifth to the one
    just outside the innermost (three at num_downs=8, none below 6), the only noise source of
    pix2pix. ``upsample`` names how every decoder level doubles the resolution
    (models/networks/upsample.py).
    """

    def __init__(self, input_nc: int, output_nc: int, num_downs: int, ngf: int, norm: NormSpec,
                 dropout: bool = True, upsample: str = DEFAULT_UPSAMPLE) -> None:
        super().__init__()
        if num_downs < 1:
            raise OptionError(f"a U-Net needs at least 1 downsampling, got {num_downs}")
        self.num_downs = num_downs

        def width(k: int) -> int:
            return ngf * min(2 ** (k - 1), 8)

        level: UnetLevel | None = None   # built from the innermost level outwards
        for k in range(num_downs, 1, -1):
            level = UnetLevel(width(k - 1), width(k), norm, inner=level, upsample=upsample,
                              dropout=dropout and 5 <= k < num_downs)
        self.model = UnetLevel(output_nc, ngf, norm, input_nc=input_nc, inner=level, outermost=True,
                               upsample=upsample)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def set_grad_checkpoint(self, enabled: bool) -> None:
        for level in self.levels():
            level.grad_checkpoint = enabled

    def levels(self) -> list[UnetLevel]:
        """Levels from the outermost (1) to the innermost (num_downs)."""
        out, level = [], self.model
        while level is not None:
            out.append(level)
            level = level.inner
        return out

    def named_stages(self) -> dict[str, nn.Module]:
        """``down1``..``downN`` (encoder, outermost first) and ``up1``..``upN`` (decoder, innermost
        first, so ``up1`` is the first decoder stage the data meets)."""
        levels = self.levels()
        stages: dict[str, nn.Module] = {f"down{i}": lvl.down for i, lvl in enumerate(levels, 1)}
        stages.update({f"up{i}": lvl.up for i, lvl in enumerate(reversed(levels), 1)})
        return stages


@dataclass(frozen=True)
class UnetSpec(GeneratorSpec):
    network: ClassVar = UnetGenerator
    family: ClassVar[str] = "unet"
    num_downs: int = arch_field(8, Flag("U-Net depth, the number of halvings (--netG unet; the presets fix it: "
                                        "unet_256 8, unet_128 7): sides must be multiples of 2**N", minimum=1))

    @property
    def size_multiple(self) -> int:
        return 2 ** self.num_downs
