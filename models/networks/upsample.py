"""How a generator's decoder doubles the resolution (``--upsample``).

``deconv`` is the paper's transposed convolution (each generator supplies its own kernel and
padding). Its stride-2 kernel overlaps unevenly, so some output pixels receive more
contributions than their neighbours: the checkerboard pattern of Odena et al. (Distill, 2016).
The resize modes first enlarge by 2 (bilinear or nearest) and then apply a 3x3 convolution
with padding 1, whose contributions are even everywhere, so the pattern cannot arise from
the layer itself.
"""
from __future__ import annotations

from typing import Callable

from torch import nn

from models.networks.conv import onednn_conv2d
from util.registry import Registry

# Which torch.nn.Upsample mode each resize entry uses; deconv has none.
UPSAMPLERS: Registry[str | None] = Registry("--upsample")
UPSAMPLERS.add("deconv", None, help="transposed convolution, stride 2 (paper)")
UPSAMPLERS.add("bilinear", "bilinear", help="bilinear 2x resize, then a 3x3 convolution")
UPSAMPLERS.add("nearest", "nearest", help="nearest-neighbour 2x resize, then a 3x3 convolution")

DEFAULT_UPSAMPLE = "deconv"


def make_upsampler(name: str, in_nc: int, out_nc: int, bias: bool,
                   deconv: Callable[[], nn.Module]) -> nn.Module:
    """One 2x upsampling layer from ``in_nc`` to ``out_nc`` channels. ``deconv`` builds the
    generator's own transposed convolution, used when ``name`` is ``deconv``."""
    mode = UPSAMPLERS.get(name)
    if mode is None:
        return deconv()
    # align_corners=False: the half-pixel convention, which keeps the image centred.
    resize = nn.Upsample(scale_factor=2, mode=mode, align_corners=False if mode == "bilinear" else None)
    return nn.Sequential(resize, onednn_conv2d(in_nc, out_nc, 3, 1, 1, bias=bias))
