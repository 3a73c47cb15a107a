"""The few image operations the pipeline needs, on (..., C, H, W) tensors, in torch alone.

torchvision is not a dependency: its wheels are built against one torch build (its CUDA wheel
fails to import beside torch's CPU-only wheel), and the CPU-only install is 4 GB smaller.
Resizing is bicubic with antialiasing, the filter PIL's ``Image.resize(BICUBIC)`` applies, so
the classic pix2pix preprocessing (PIL images resized bicubically) is kept: on facades photos
at most 2 levels apart from PIL's, on under 0.5% of the pixels (tests/test_image_ops.py).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

Size = tuple[int, int]   # (height, width)


def resize_bicubic(image: torch.Tensor, size: Size) -> torch.Tensor:
    """Bicubic resize with antialiasing of a uint8 or float (..., C, H, W) tensor; uint8 stays
    uint8 (rounded and clamped), a no-op (the same tensor) at the size already."""
    size = (int(size[0]), int(size[1]))
    if tuple(image.shape[-2:]) == size:
        return image
    batch = image.reshape(-1, *image.shape[-3:])
    # torch resamples uint8 natively on the CPU (rounding once, as PIL does); elsewhere, and for
    # other integer types, go through float32 and round back.
    native = image.dtype.is_floating_point or (image.dtype == torch.uint8 and image.device.type == "cpu")
    if native:
        out = F.interpolate(batch, size=size, mode="bicubic", align_corners=False, antialias=True)
    else:
        out = F.interpolate(batch.float(), size=size, mode="bicubic", align_corners=False, antialias=True)
        # int32 holds 16-bit samples (data/pixels.py): keep them in 0..65535.
        info = torch.iinfo(image.dtype)
        low, high = (0, sample_max(image.dtype)) if image.dtype == torch.int32 else (info.min, info.max)
        out = out.round_().clamp_(low, high).to(image.dtype)
    return out.reshape(*image.shape[:-2], *size)


def crop(image: torch.Tensor, top: int, left: int, height: int, width: int) -> torch.Tensor:
    """The (height, width) window at (top, left); it must lie inside the image."""
    h, w = image.shape[-2:]
    if top < 0 or left < 0 or top + height > h or left + width > w:
        raise ValueError(f"crop {height}x{width} at ({top}, {left}) does not fit in a {h}x{w} image")
    return image[..., top:top + height, left:left + width]


def hflip(image: torch.Tensor) -> torch.Tensor:
    return image.flip(-1)


def sample_max(dtype: torch.dtype) -> int:
    """The largest sample of an image tensor: 255 for uint8 (8-bit), 1 for floating-point
    samples (data/pixels.py reads them as [0, 1]), 65535 for the int32 that holds 16-bit ones."""
    if dtype.is_floating_point:
        return 1
    return 255 if dtype == torch.uint8 else 65535


def to_unit(image: torch.Tensor) -> torch.Tensor:
    """uint8, 16-bit samples in int32 or float samples -> float32 in [0, 1] (a new tensor,
    whatever the input's dtype)."""
    # Divided in place in a fresh copy: the values of a plain division without a second
    # full-size buffer in the loader workers.
    unit = image.to(torch.float32, copy=True)
    if image.dtype.is_floating_point:
        # Stored in [0, 1] (data/pixels.py checks); only a bicubic resize overshoots, as it would
        # past 0 and 255 for uint8, which that resize clamps.
        return unit.clamp_(0.0, 1.0)
    return unit.div_(float(sample_max(image.dtype)))


def pil_to_uint8_tensor(img: Image.Image) -> torch.Tensor:
    """A PIL image of 8-bit bands -> contiguous uint8 (C, H, W) (C = 1 for "L")."""
    array = np.array(img, dtype=np.uint8, copy=True)
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()
