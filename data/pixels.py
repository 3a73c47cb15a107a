"""Decoding image files at their own bit depth and channel count.

8-bit files become uint8 tensors (C, H, W) through the same converter as before
(:func:`data.image_io.to_mode`), so their numbers do not change. 16-bit files (PNG or TIFF of
one channel, TIFF of any number of channels) become :data:`WIDE` tensors holding 0..65535:
torch's own uint16 lacks most CPU operations (flip, cat, arange), int32 holds them exactly.

Floating-point TIFF samples become :data:`FLOAT` tensors at full precision, taken as [0, 1]
as stored (no per-file scaling, no rounding to 8 bits); a file with samples outside [0, 1], NaN
or infinity is refused. Results for float inputs are written at 16 bits (:func:`bits_of`).
32-bit integer samples are refused: convert them to 16-bit.

TIFF files are read with tifffile, which keeps 16-bit, floating-point and many-channel samples
that Pillow would round to 8 bits (16-bit RGB) or refuse. Pillow reads a 16-bit colour PNG as
8-bit RGB, so such a file is read at 8 bits; save it as TIFF to keep the 16 bits.
"""
from __future__ import annotations


from pathlib import Path

import numpy as np
import torch
from PIL import Image

from data.image_io import (TIFF_EXTENSIONS as _TIFF, DataError, ImageSource, check_float_range,
                           check_pixel_count, open_image, pil_to_uint8, quiet_readers, readable, reason,
                           unsupported_int32)
from data.image_ops import to_unit

WIDE = torch.int32                      # dtype of 16-bit samples
FLOAT = torch.float32                   # dtype of floating-point samples, in [0, 1]
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
_GRAY_MODES = frozenset({"L", "1", "LA", "La", "I", "F"}) | _SIXTEEN_BIT_MODES


def bits_of(pixels: torch.Tensor) -> int:
    """The depth results for these samples are written at (``--output_bits auto``): 8 for uint8
    samples, 16 for :data:`WIDE` ones and for :data:`FLOAT` ones (16 bits keep far more of a
    float's precision than 8, and every viewer opens them)."""
    if pixels.dtype == torch.uint8:
        return 8
    if pixels.dtype in (WIDE, FLOAT):
        return 16
    raise ValueError(f"pixels of dtype {pixels.dtype} are neither 8-bit (uint8), 16-bit ({WIDE}) "
                     f"nor floating point ({FLOAT})")


def widen(pixels: torch.Tensor) -> torch.Tensor:
    """8-bit samples as 16-bit ones, v -> 257 v (0 -> 0, 255 -> 65535): the same fractions."""
    return pixels.to(WIDE) * 257 if pixels.dtype == torch.uint8 else pixels


def common_depth(images: list[torch.Tensor]) -> list[torch.Tensor]:
    """Images of one sample at the widest depth among them (8 < 16 < float), the same fractions:
    what stacking them into one tensor needs."""
    if any(image.dtype == FLOAT for image in images):
        return [to_unit(image) for image in images]
    if any(image.dtype == WIDE for image in images):
        return [widen(image) for image in images]
    return images


def native_channels(path: Path) -> int:
    """The channels a file holds as this module decodes it, from its header: 1 for gray, 3 for
    colour (an 8-bit alpha channel is composited away), the stored count for other TIFFs."""
    if path.suffix.lower() in _TIFF:
        count = _tiff_header_channels(path)
        if count is not None and count not in (1, 3):
            return count
    try:
        with quiet_readers(), Image.open(path) as img:
            return 1 if img.mode in _GRAY_MODES else 3
    except Exception as err:  # noqa: BLE001 - any reader failure on a user file means a bad file
        raise DataError(f"{path}: cannot read image ({reason(err)})") from None


def _tiff_header_channels(path: Path) -> int | None:
    import tifffile

    try:
        with quiet_readers(), tifffile.TiffFile(readable(path)) as tif:
            page = tif.pages[0]
            # 16-bit RGBA keeps its alpha (only the 8-bit path composites it away).
            return 3 if page.samplesperpixel == 4 and page.bitspersample == 8 else int(page.samplesperpixel)
    except Exception:  # noqa: BLE001 - Pillow words the error
        return None


def read_pixels(path: ImageSource, channels: int | None = None, option: str = "--input_nc") -> torch.Tensor:
    """Decode ``path`` into (C, H, W): uint8 for 8-bit files, :data:`WIDE` for 16-bit ones,
    :data:`FLOAT` for floating-point ones.

    ``channels`` None keeps the file's own count (:func:`native_channels`); 1 or 3 converts gray
    and colour into each other as the 8-bit path does; any other count must be what the file
    holds. A count that cannot be met raises :class:`DataError` naming ``option``.
    """
    array = _read_tiff(path) if path.suffix.lower() in _TIFF else None
    if array is not None:
        return _from_array(array, path, channels, option)
    img = open_image(path)
    if img.mode in _SIXTEEN_BIT_MODES or (img.mode == "I" and np.asarray(img).max(initial=0) > 255):
        return _from_array(np.asarray(img), path, channels, option)
    own = 1 if img.mode in _GRAY_MODES else 3
    want = own if channels is None else channels
    if want not in (1, 3):
        raise DataError(f"{path}: holds {own} channel(s), but {option} is {channels}")
    return pil_to_uint8(img, "L" if want == 1 else "RGB", path)


def _read_tiff(path: ImageSource) -> np.ndarray | None:
    """The first page of a TIFF as (H, W) or (H, W, C) when it holds what Pillow would round
    or refuse (16-bit or floating-point samples, or a channel count other than 1, 3 and 4);
    None otherwise, and when tifffile cannot read it, so that Pillow (with its one-line errors)
    gets the file. 32-bit integer samples raise :class:`DataError`."""
    import tifffile   # only TIFF files need it

    try:
        with quiet_readers(), tifffile.TiffFile(readable(path)) as tif:
            page = tif.pages[0]
            kind = page.dtype.kind if page.dtype is not None else ""
            if kind in "iu" and page.dtype.itemsize >= 4:
                raise DataError(unsupported_int32(path))
            if page.dtype != np.uint16 and kind != "f" and page.samplesperpixel in (1, 3, 4):
                return None    # Pillow's path (8-bit, bilevel), numbers as they always were
            check_pixel_count(path, int(page.imagewidth), int(page.imagelength))
            array = page.asarray()
            planar = page.axes.startswith("S") and array.ndim == 3   # (C, H, W) storage
    except DataError:
        raise
    except Exception:  # noqa: BLE001 - malformed files: Pillow's reader words the error
        return None
    return np.moveaxis(array, 0, -1) if planar else array


def _from_array(array: np.ndarray, path: ImageSource, channels: int | None, option: str) -> torch.Tensor:
    if array.dtype == np.uint8:
        tensor = torch.from_numpy(np.ascontiguousarray(array)).to(torch.uint8)
    elif array.dtype.kind == "f" and array.ndim in (2, 3):
        check_float_range(array, path)
        tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    elif array.dtype in (np.uint16, np.int32, np.uint32, np.int64) and array.ndim in (2, 3):
        tensor = torch.from_numpy(np.clip(array.astype(np.int64), 0, 65535).astype(np.int32))
    else:
        raise DataError(f"{path}: samples of type {array.dtype} are not supported (8- or 16-bit integers, "
                        "or floating point in [0, 1])")
    if tensor.dim() == 2:
        tensor = tensor.unsqueeze(-1)
    tensor = tensor.permute(2, 0, 1).contiguous()     # (C, H, W)
    own = tensor.shape[0]
    if channels is None or channels == own:
        return tensor
    if channels == 3 and own == 1:
        return tensor.expand(3, -1, -1).contiguous()
    if channels == 1 and own in (3, 4):
        # ITU-R 601 luma with the weights Pillow's convert("L") uses, rounded.
        rgb = tensor[:3].to(torch.float64)
        luma = (rgb[0] * 299 + rgb[1] * 587 + rgb[2] * 114) / 1000
        luma = luma if tensor.dtype == FLOAT else luma.round()   # integers round; floats keep precision
        return luma.to(tensor.dtype).unsqueeze(0)
    raise DataError(f"{path}: holds {own} channel(s), but {option} is {channels}")


def open_eight_bit(path: ImageSource) -> Image.Image:
    """The file as an 8-bit Pillow image, for a mode that reads 8 bits (aligned): wider samples
    rounded to the nearest 8-bit level, round(v * 255 / 65535) for 16-bit and round(v * 255) for
    floating point, in gray and colour alike (Pillow alone truncates 16-bit colour, v >> 8)."""
    array = _read_tiff(path) if path.suffix.lower() in _TIFF else None
    if array is None:
        return open_image(path)
    pixels = _from_array(array, path, None, "")
    if pixels.shape[0] not in (1, 3, 4):
        raise DataError(f"{path}: holds {pixels.shape[0]} channels; this dataset mode reads gray or colour "
                        "files (--dataset_mode paired reads any number)")
    values = pixels.permute(1, 2, 0).numpy().astype(np.float64)
    if pixels.dtype != torch.uint8:
        scale = 255.0 if pixels.dtype == FLOAT else 255.0 / 65535.0
        values = np.clip(np.rint(values * scale), 0, 255)   # as data/image_io.py rounds 16-bit gray
    eight = values.astype(np.uint8)
    return Image.fromarray(eight[..., 0] if eight.shape[-1] == 1 else eight,
                           mode={1: "L", 3: "RGB", 4: "RGBA"}[eight.shape[-1]])
