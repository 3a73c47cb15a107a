"""16-bit colour PNGs at their 16 bits.

Pillow has no 16-bit colour mode: it unpacks a 16-bit RGB(A) PNG into 8-bit RGB(A) by keeping
each sample's high byte (v >> 8), so such a file would be truncated where a 16-bit gray PNG or a
16-bit TIFF keeps its depth. Its PNG decoder does the work that matters (inflating, undoing the
row filters, interlacing) before unpacking, and the unpacker is named by the tile's raw mode:
decoding once with the big-endian raw mode ("RGB;16B", the high bytes) and once with the
little-endian one ("RGB;16L", which on big-endian data keeps the low bytes) gives both bytes of
every sample through Pillow's own decoder. Both raw modes take 6 (8) bytes a pixel, so the row
filters see the same pixel width either way.

16-bit gray+alpha PNGs have no little-endian raw mode in Pillow, but the 8-bit RGBA raw mode takes
the same 4 bytes a pixel, so decoding once with it gives every byte as stored (gray high, gray
low, alpha high, alpha low). Pillow opens such a file as RGBA (its gray copied into R, G and B);
decoded here it is the gray image it declares, as an 8-bit gray+alpha PNG is.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from data.image_io import DataError, ImageSource, check_pixel_count, quiet_readers, readable

_HIGH_TO_LOW = {"RGB;16B": "RGB;16L", "RGBA;16B": "RGBA;16L"}
# A 16-bit raw mode -> (the image mode Pillow opens it in, an 8-bit raw mode of as many bytes a pixel).
_AS_BYTES = {"LA;16B": ("RGBA", "RGBA")}


def _raw_mode(img: Image.Image) -> str | None:
    """The PNG's raw mode when this module decodes it, else None."""
    if img.format != "PNG" or len(img.tile) != 1:
        return None
    raw = img.tile[0][3]
    if raw in _HIGH_TO_LOW or (raw in _AS_BYTES and img.mode == _AS_BYTES[raw][0]):
        return raw
    return None


def is_gray_alpha(img: Image.Image) -> bool:
    """Whether ``img`` (opened, not loaded) is a 16-bit gray+alpha PNG that this module reads
    as gray: Pillow's mode says RGBA."""
    return _raw_mode(img) in _AS_BYTES


def read_wide_png(path: ImageSource) -> np.ndarray | None:
    """(H, W, 2, 3 or 4) uint16 samples of a 16-bit gray+alpha, RGB or RGBA PNG; None for any
    other file, and when Pillow cannot read it (the ordinary path then words the error)."""
    try:
        with quiet_readers(), Image.open(readable(path)) as img:
            raw = _raw_mode(img)
            if raw is None:
                return None
            check_pixel_count(path, *img.size)
            if raw in _AS_BYTES:
                stored = _decoded(img, _AS_BYTES[raw][1]).astype(np.uint16)
                return (stored[..., 0::2] << 8) | stored[..., 1::2]
            high = _decoded(img, raw)
        with quiet_readers(), Image.open(readable(path)) as img:
            low = _decoded(img, _HIGH_TO_LOW[img.tile[0][3]])
    except DataError:
        raise
    except Exception:  # noqa: BLE001 - damaged files: the 8-bit path reports them in one line
        return None
    return (high.astype(np.uint16) << 8) | low


def _decoded(img: Image.Image, rawmode: str) -> np.ndarray:
    codec, extents, offset, _ = img.tile[0]
    img.tile = [(codec, extents, offset, rawmode)]
    img.load()
    return np.asarray(img)
