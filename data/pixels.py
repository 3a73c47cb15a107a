"""Decoding image files at their own bit depth and channel count.

8-bit files become uint8 tensors (C, H, W) through the same converter as before
(:func:`data.image_io.to_mode`), so their numbers do not change. 16-bit files (PNG or TIFF of
one channel, TIFF of any number of channels) become :data:`WIDE` tensors holding 0..65535:
torch's own uint16 lacks most CPU operations (flip, cat, arange), int32 holds them exactly.

Floating-point TIFF samples become :data:`FLOAT` tensors at full precision, taken as [0, 1]
as stored (no per-file scaling, no rounding to 8 bits); a file with samples outside [0, 1], NaN
or infinity is refused. Results for float inputs are written at 16 bits (:func:`bits_of`).
32-bit integer samples and signed ones are refused: convert them to unsigned 16-bit.

TIFF files are read with tifffile, which keeps 16-bit, floating-point and many-channel samples
that Pillow would round to 8 bits (16-bit RGB) or refuse; MinIsWhite ones are inverted as Pillow
inverts 8-bit ones, and an alpha channel (ExtraSamples) is composited onto white at the file's
depth when 1 or 3 channels are asked for. A 16-bit colour PNG is read at 16 bits too
(data/wide_png.py), and a 16-bit netpbm file is 16-bit by its header, whatever its values: a
file's depth is what it declares, never guessed from its content.
"""
from __future__ import annotations


from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from data.image_io import (TIFF_EXTENSIONS as _TIFF, DataError, ImageSource, check_float_range,
                           check_pixel_count, open_image, pil_to_uint8, quiet_readers, readable, reason, to_mode,
                           unsupported_int32, unsupported_signed)
from data.image_ops import to_unit
from data.wide_png import is_gray_alpha, read_wide_png

WIDE = torch.int32                      # dtype of 16-bit samples
FLOAT = torch.float32                   # dtype of floating-point samples, in [0, 1]
# "I" is what Pillow makes of a netpbm file of maxval > 255, scaled to 0..65535: 16-bit by its
# header whatever its values (32-bit integer TIFFs, Pillow's other "I", are refused on opening).
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})
_GRAY_MODES = frozenset({"L", "1", "LA", "La", "F"}) | _SIXTEEN_BIT_MODES
_MINISWHITE = 0            # TIFF PhotometricInterpretation: 0 is white, as a scanner's bilevel pages
_ALPHA_KINDS = (1, 2)      # TIFF ExtraSamples: 1 premultiplied (associated) alpha, 2 straight alpha


@dataclass(frozen=True)
class Channels:
    """What a file decodes to with no count asked (``read_pixels(path)``): ``count`` channels,
    the last of them an alpha channel when ``alpha``, which asking for 1 or 3 channels composites
    onto white (as the 8-bit path composites every alpha channel)."""
    count: int
    alpha: bool = False

    def gives(self, wanted: int) -> bool:
        """Whether ``read_pixels(path, wanted)`` can meet ``wanted``."""
        return wanted == self.count or (wanted in (1, 3) and self.count - self.alpha in (1, 3))


@dataclass(frozen=True)
class _Samples:
    """Samples decoded outside Pillow, (H, W) or (H, W, C), and the ExtraSamples kind of a last
    alpha channel (0: none)."""
    array: np.ndarray
    alpha: int = 0


@dataclass(frozen=True)
class _TiffLayout:
    takes: bool        # tifffile decodes it: Pillow would round its samples or refuse it
    count: int         # samples per pixel
    colour: int        # of them, the colour (or gray) ones; the rest are extra samples
    alpha: int         # ExtraSamples kind of a last alpha channel, 0 for none
    miniswhite: bool   # 0 is white


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


def channel_layout(path: Path) -> Channels:
    """The channels a file holds as this module decodes it, from its header: 1 for gray, 3 for
    colour (an 8-bit alpha channel is composited away), the stored count for other TIFFs."""
    if path.suffix.lower() in _TIFF:
        layout = _tiff_header(path)
        if layout is not None and layout.takes:
            return Channels(layout.count, layout.alpha != 0)
    try:
        with quiet_readers(), Image.open(path) as img:
            return opened_channels(img)
    except Exception as err:  # noqa: BLE001 - any reader failure on a user file means a bad file
        raise DataError(f"{path}: cannot read image ({reason(err)})") from None


def opened_channels(img: Image.Image) -> Channels:
    """:func:`channel_layout` of a file other than a TIFF that Pillow has open."""
    return Channels(1 if img.mode in _GRAY_MODES or is_gray_alpha(img) else 3)


def native_channels(path: Path) -> int:
    """How many channels ``read_pixels(path)`` gives (:func:`channel_layout`)."""
    return channel_layout(path).count


def _tiff_header(path: ImageSource) -> _TiffLayout | None:
    import tifffile   # only TIFF files need it

    try:
        with quiet_readers(), tifffile.TiffFile(readable(path)) as tif:
            return _tiff_layout(path, tif.pages[0])
    except DataError:
        raise
    except Exception:  # noqa: BLE001 - Pillow words the error
        return None


def _tiff_layout(path: ImageSource, page: Any) -> _TiffLayout:
    """How this module reads a TIFF page; sample types it cannot take as they are raise
    :class:`DataError`."""
    dtype = page.dtype
    kind = dtype.kind if dtype is not None else ""
    if kind in "iu" and dtype.itemsize >= 4:
        raise DataError(unsupported_int32(path))
    if kind == "i":
        # A signed zero is no black: DEMs and CT (Hounsfield units) need a window the user picks.
        raise DataError(unsupported_signed(path, 8 * dtype.itemsize))
    count = int(page.samplesperpixel)
    extras = tuple(int(e) for e in (page.extrasamples or ()))
    colour = count - len(extras)
    alpha = extras[0] if len(extras) == 1 and extras[0] in _ALPHA_KINDS and colour in (1, 3) else 0
    # 8-bit files of 1, 3 and 4 samples (gray, bilevel, palette, RGB, RGBA, CMYK, YCbCr) go
    # through Pillow, with the numbers they always had.
    takes = dtype == np.uint16 or kind == "f" or count not in (1, 3, 4)
    return _TiffLayout(takes, count, colour, alpha, int(page.photometric) == _MINISWHITE)


def read_pixels(path: ImageSource, channels: int | None = None, option: str = "--input_nc") -> torch.Tensor:
    """Decode ``path`` into (C, H, W): uint8 for 8-bit files, :data:`WIDE` for 16-bit ones,
    :data:`FLOAT` for floating-point ones.

    ``channels`` None keeps the file's own count (:func:`native_channels`); 1 or 3 converts gray
    and colour into each other as the 8-bit path does (an alpha channel composited onto white);
    any other count must be what the file holds. A count that cannot be met raises
    :class:`DataError` naming ``option``.
    """
    samples = _wide_samples(path)
    if samples is not None:
        return _from_array(samples, path, channels, option)
    img = open_image(path)
    if img.mode in _SIXTEEN_BIT_MODES:
        return _from_array(_Samples(np.asarray(img)), path, channels, option)
    own = 1 if img.mode in _GRAY_MODES else 3
    want = own if channels is None else channels
    if want not in (1, 3):
        raise DataError(f"{path}: holds {own} channel(s), but {option} is {channels}")
    return pil_to_uint8(img, "L" if want == 1 else "RGB", path)


def _wide_samples(path: ImageSource) -> _Samples | None:
    """The samples of a file Pillow would round or refuse (16-bit or floating-point TIFF, TIFF
    of a channel count other than 1, 3 and 4, 16-bit colour PNG); None for the others."""
    suffix = path.suffix.lower()
    if suffix in _TIFF:
        return _read_tiff(path)
    if suffix == ".png":
        array = read_wide_png(path)
        if array is not None:
            # A PNG's alpha is transparency, composited away as the 8-bit path does.
            return _Samples(_on_white(array, 2) if array.shape[-1] in (2, 4) else array)
    return None


def _read_tiff(path: ImageSource) -> _Samples | None:
    """The first page of a TIFF as (H, W) or (H, W, C) when it holds what Pillow would round
    or refuse (16-bit or floating-point samples, or a channel count other than 1, 3 and 4);
    None otherwise, and when tifffile cannot read it, so that Pillow (with its one-line errors)
    gets the file. MinIsWhite samples are inverted, as Pillow inverts 8-bit ones. Integer
    samples other than unsigned 8 and 16 bits raise :class:`DataError`."""
    import tifffile   # only TIFF files need it

    try:
        with quiet_readers(), tifffile.TiffFile(readable(path)) as tif:
            page = tif.pages[0]
            layout = _tiff_layout(path, page)
            if not layout.takes:
                return None    # Pillow's path (8-bit, bilevel), numbers as they always were
            check_pixel_count(path, int(page.imagewidth), int(page.imagelength))
            array = page.asarray()
            planar = page.axes.startswith("S") and array.ndim == 3   # (C, H, W) storage
    except DataError:
        raise
    except Exception:  # noqa: BLE001 - malformed files: Pillow's reader words the error
        return None
    array = np.moveaxis(array, 0, -1) if planar else array
    if layout.miniswhite:
        array = _inverted(array, layout.colour, path)
    return _Samples(array, layout.alpha)


def _inverted(array: np.ndarray, colour: int, path: ImageSource) -> np.ndarray:
    """MinIsWhite samples as MinIsBlack ones: the colour samples turned over (top - v); the
    extra samples (alpha) keep their meaning."""
    if array.dtype.kind == "f":
        check_float_range(array, path)   # before turning: the message names the stored range
        top: float | int = 1.0
    elif array.dtype.kind == "u":
        top = int(np.iinfo(array.dtype).max)
    else:
        return array   # refused by _from_array
    out = array.copy()
    if out.ndim == 2:
        return top - out
    out[..., :colour] = top - out[..., :colour]
    return out


def _on_white(array: np.ndarray, alpha: int) -> np.ndarray:
    """(H, W, C + 1) samples with a last alpha channel of kind ``alpha`` -> (H, W, C) composited
    onto white at their own depth: straight alpha c a + top (1 - a), premultiplied c + top - a."""
    if array.dtype == np.uint8 and alpha == 2:
        # Pillow's own compositing, so an 8-bit TIFF gives what the same PNG gives.
        img = Image.fromarray(np.ascontiguousarray(array), mode="RGBA" if array.shape[-1] == 4 else "LA")
        return np.array(to_mode(img, "RGB" if array.shape[-1] == 4 else "L"))
    kind = array.dtype.kind
    top = 1.0 if kind == "f" else float(np.iinfo(array.dtype).max)
    values = array.astype(np.float64)
    colour, a = values[..., :-1], values[..., -1:]
    white = colour + (top - a) if alpha == 1 else colour * (a / top) + (top - a)
    if kind == "f":
        return np.clip(white, 0.0, 1.0).astype(array.dtype)
    return np.clip(np.rint(white), 0, top).astype(array.dtype)


def _from_array(samples: _Samples, path: ImageSource, channels: int | None, option: str) -> torch.Tensor:
    array = samples.array
    stored = array.shape[-1] if array.ndim == 3 else 1
    alpha = samples.alpha != 0 and array.ndim == 3
    if alpha and channels in (1, 3) and channels != stored:
        if array.dtype.kind == "f":
            check_float_range(array, path)
        array = _on_white(array, samples.alpha)
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
    if alpha:
        raise DataError(f"{path}: has an alpha channel ({stored - 1} colour + alpha), but {option} is {channels}: "
                        f"{option} 1 or 3 composites it onto white, {option} {stored} keeps it")
    raise DataError(f"{path}: holds {own} channel(s), but {option} is {channels}")


def open_eight_bit(path: ImageSource) -> Image.Image:
    """The file as an 8-bit Pillow image, for a mode that reads 8 bits (aligned, the datasets/
    tools): wider samples rounded to the nearest 8-bit level, round(v * 255 / 65535) for 16-bit
    and round(v * 255) for floating point, in gray and colour alike (Pillow alone truncates 16-bit
    colour, v >> 8); an alpha channel is composited onto white at the file's own depth first."""
    samples = _wide_samples(path)
    if samples is None:
        return open_image(path)
    stored = samples.array.shape[-1] if samples.array.ndim == 3 else 1
    pixels = _from_array(samples, path, stored - 1 if samples.alpha else None, "")
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


def open_eight_bit_as(path: ImageSource, mode: str | None = None) -> Image.Image:
    """:func:`open_eight_bit` converted to 8-bit ``mode`` ("L" or "RGB"); None: "L" for a gray
    file, "RGB" for any other (the datasets/ tools write what the aligned loader reads)."""
    img = open_eight_bit(path)
    return to_mode(img, mode or ("L" if img.mode in _GRAY_MODES else "RGB"), path)
