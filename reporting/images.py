"""Tensor images to 8-bit files: what test.py and translate.py write."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image


def quantize(image: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> uint8 with rounding: the one definition of what an image file holds."""
    return ((image.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """(C, H, W) in [-1, 1], C = 1 or 3 -> (H, W) or (H, W, 3) uint8, rounded like an 8-bit PNG."""
    array = quantize(image.cpu())
    return array[0].numpy() if array.shape[0] == 1 else array.permute(1, 2, 0).numpy()


def written_pixels(image: torch.Tensor, aspect_ratio: float = 1.0) -> np.ndarray:
    """The uint8 pixels ``save_image`` writes: rounded to 8 bits, then resized bicubically when
    ``aspect_ratio`` (width / height) is not 1 (> 1 widens the image, < 1 makes it taller)."""
    if image.dim() != 3 or image.shape[0] not in (1, 3):
        raise ValueError(f"expected a (C, H, W) image with C = 1 or 3, got shape {tuple(image.shape)}")
    pixels = to_uint8(image)
    if aspect_ratio == 1.0:
        return pixels
    pil = Image.fromarray(pixels)
    w, h = pil.size
    size = (round(w * aspect_ratio), h) if aspect_ratio > 1 else (w, round(h / aspect_ratio))
    return np.asarray(pil.resize(size, Image.Resampling.BICUBIC))


def tile_row(tiles: torch.Tensor, padding: int = 1, pad_value: float = 1.0) -> torch.Tensor:
    """(N, C, H, W) -> (C, H + 2 padding, N (W + padding) + padding): the tiles left to right,
    each framed by ``padding`` pixels of ``pad_value``."""
    n, c, h, w = tiles.shape
    row = torch.full((c, h + 2 * padding, n * (w + padding) + padding), pad_value, dtype=tiles.dtype)
    for i, tile in enumerate(tiles):
        left = padding + i * (w + padding)
        row[:, padding:padding + h, left:left + w] = tile
    return row


def save_image(image: torch.Tensor, path: Path, aspect_ratio: float = 1.0) -> np.ndarray:
    """Write an 8-bit image file (PNG unless the suffix names another format) holding
    ``written_pixels``, atomically: a page being viewed never shows a half-written file.
    Returns the pixels written, so that what is measured is what is on disk."""
    pixels = written_pixels(image, aspect_ratio)
    write_image_pixels(pixels, path)
    return pixels


def write_image_pixels(pixels: np.ndarray, path: Path) -> None:
    """``save_image``'s atomic write of pixels already rounded ((H, W) or (H, W, 3) uint8)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    Image.fromarray(pixels).save(tmp, format=Image.registered_extensions().get(path.suffix.lower(), "PNG"))
    tmp.replace(path)
