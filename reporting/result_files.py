"""Results at the bit depth and channel count of the data: what test.py and translate.py write.

A [-1, 1] image becomes 8-bit samples round((y + 1) * 127.5) or 16-bit samples
round((y + 1) * 32767.5): the inverses of reading v as v / 255 or v / 65535 scaled to
[-1, 1], so a value read and written at one depth comes back exactly.

Floating-point inputs (data/pixels.py reads them as [0, 1]) give 16-bit results with
``--output_bits auto``: their ``A_bits`` is 16.

Files: 1 or 3 channels at 8 bits, and 1 channel at 16 bits, are PNG; 3 channels at 16 bits
and any other channel count are TIFF (Pillow cannot write 16-bit colour PNG, and PNG holds
at most 4 channels), written with tifffile with the channels last (H, W, C).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from reporting.images import write_image_pixels, written_pixels
from reporting.output_folder import write_error
from util.errors import OptionError
from util.registry import Registry

OUTPUT_BITS: Registry[int | None] = Registry("--output_bits")
OUTPUT_BITS.add("auto", None, help="the bit depth of the input (8 or 16 bits)")
OUTPUT_BITS.add("8", 8, help="8-bit files")
OUTPUT_BITS.add("16", 16, help="16-bit files (PNG for gray, TIFF otherwise)")


def output_bits(option: str, input_bits: int) -> int:
    """The depth to write: the option's, or with ``auto`` the input's."""
    return OUTPUT_BITS.get(option) or input_bits


def quantize_bits(image: torch.Tensor, bits: int) -> np.ndarray:
    """(C, H, W) in [-1, 1] -> (H, W) for one channel, else (H, W, C); uint8 or uint16."""
    if bits not in (8, 16):
        raise ValueError(f"results are written with 8 or 16 bits, not {bits}")
    top = 255.0 if bits == 8 else 65535.0
    values = ((image.detach().float().cpu().clamp(-1, 1) + 1) * (top / 2)).round()
    array = values.numpy().astype(np.uint8 if bits == 8 else np.uint16)
    return array[0] if array.shape[0] == 1 else np.moveaxis(array, 0, -1)


def result_suffix(channels: int, bits: int) -> str:
    return ".png" if channels == 1 or (channels == 3 and bits == 8) else ".tif"


def write_pixels(pixels: np.ndarray, path: Path) -> None:
    """Write (H, W) or (H, W, C) uint8/uint16 samples to ``path``: PNG when its suffix is .png
    (what :func:`result_suffix` picks for gray and 8-bit RGB), else TIFF; atomically: the file
    appears only once complete."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix.lower() != ".png":
            import tifffile

            photometric = "rgb" if pixels.ndim == 3 and pixels.shape[-1] == 3 else "minisblack"
            tifffile.imwrite(tmp, pixels, photometric=photometric, planarconfig="contig" if pixels.ndim == 3 else None)
        else:
            Image.fromarray(pixels).save(tmp, format="PNG")
        os.replace(tmp, path)
    except OSError as err:   # a full disk or a read-only folder: one line naming the file
        raise write_error(err, path) from None
    finally:
        if tmp.exists():
            tmp.unlink()


def save_result(image: torch.Tensor, path_without_suffix: Path, bits: int) -> tuple[Path, np.ndarray]:
    """Write ``image`` at ``bits`` in the format its channels need; returns (file, pixels)."""
    pixels = quantize_bits(image, bits)
    path = _result_path(path_without_suffix, image, bits)
    write_pixels(pixels, path)
    return path, pixels


def _result_path(path_without_suffix: Path, image: torch.Tensor, bits: int) -> Path:
    return path_without_suffix.with_name(path_without_suffix.name + result_suffix(image.shape[0], bits))


def shown_channels(image: torch.Tensor) -> torch.Tensor:
    """A (C, H, W) image as something a page can show: 1 and 3 channels as they are, 2 as its
    first channel, more than 3 as its first three."""
    channels = image.shape[-3] if image.dim() >= 3 else 0
    if channels in (0, 1, 3):
        return image
    return image[..., :1, :, :] if channels == 2 else image[..., :3, :, :]


def test_image_pixels(image: torch.Tensor, bits: int, aspect_ratio: float = 1.0) -> np.ndarray:
    """The pixels :func:`save_test_image` writes for ``image``, which test.py measures (and
    validation during training, without writing them)."""
    if _eight_bit_page_image(image, bits):
        return written_pixels(image, aspect_ratio)
    if aspect_ratio != 1.0:
        raise OptionError(f"--aspect_ratio {aspect_ratio} resizes 8-bit gray or RGB results only, not {bits}-bit "
                         f"results of {image.shape[0]} channel(s); drop it or add --output_bits 8")
    return quantize_bits(image, bits)


def save_test_image(image: torch.Tensor, path_without_suffix: Path, bits: int,
                    aspect_ratio: float = 1.0) -> tuple[Path, np.ndarray]:
    """8-bit gray and RGB results as before (PNG, ``--aspect_ratio`` applied); the others as
    :func:`save_result` writes them, at their stored aspect. Returns (file, pixels written)."""
    pixels = test_image_pixels(image, bits, aspect_ratio)
    if _eight_bit_page_image(image, bits):
        path = path_without_suffix.with_name(path_without_suffix.name + ".png")
        write_image_pixels(pixels, path)
    else:
        path = _result_path(path_without_suffix, image, bits)
        write_pixels(pixels, path)
    return path, pixels


def _eight_bit_page_image(image: torch.Tensor, bits: int) -> bool:
    return bits == 8 and image.shape[0] in (1, 3)
