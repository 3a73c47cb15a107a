"""Reflect padding to the generator's size multiple, and the crop that undoes it.

One definition serves training (``--preprocess pad``), test.py, translate.py / serve.py
(``--fit reflect``) and ONNX files (whose metadata describes it for translate.py --onnx):
the padding is split between the two sides of each axis (the extra pixel, if any, after),
so a U-Net sees the image centred, and mirrors the image about its edge pixels, repeating
the mirror when the padding is wider than the image.
"""
from __future__ import annotations

from typing import NamedTuple

import torch


class Padding(NamedTuple):
    top: int
    bottom: int
    left: int
    right: int


def padding_for(height: int, width: int, multiple: int) -> Padding:
    """How many rows and columns bring (height, width) up to the next multiples of ``multiple``."""
    extra_h, extra_w = -height % multiple, -width % multiple
    return Padding(extra_h // 2, extra_h - extra_h // 2, extra_w // 2, extra_w - extra_w // 2)


def _mirror(n: int, before: int, after: int) -> torch.Tensor:
    """Source indices along an axis of length ``n`` padded by reflection (edge not repeated)."""
    positions = torch.arange(-before, n + after)
    if n == 1:
        return torch.zeros_like(positions)
    period = 2 * (n - 1)
    folded = positions.remainder(period)
    return torch.where(folded < n, folded, period - folded)


def reflect_pad(image: torch.Tensor, pad: Padding) -> torch.Tensor:
    """Pad (..., H, W) of any dtype by reflection, however wide the padding."""
    if pad == (0, 0, 0, 0):
        return image
    height, width = image.shape[-2:]
    rows = _mirror(height, pad.top, pad.bottom).to(image.device)
    cols = _mirror(width, pad.left, pad.right).to(image.device)
    return image.index_select(-2, rows).index_select(-1, cols)


def pad_to_multiple(image: torch.Tensor, multiple: int) -> torch.Tensor:
    return reflect_pad(image, padding_for(*image.shape[-2:], multiple))


def crop_padding(image: torch.Tensor, height: int, width: int, multiple: int) -> torch.Tensor:
    """The (height, width) image that :func:`pad_to_multiple` padded, cut out of ``image``."""
    pad = padding_for(height, width, multiple)
    return image[..., pad.top:pad.top + height, pad.left:pad.left + width]
