"""A photo's EXIF orientation: phones store the sensor's pixels as they came and record in a tag
how to turn them for viewing, so a portrait photo is often stored sideways. Viewers and browsers
show it turned; translate.py turns it the same way before translating, so its result lines up
with the photo the user sees.

Data sets are read as stored (test.py and training, as the reference does): a pair's A and B
may come from tools that disagree about the tag, and turning one of them would misalign the pair.
The paired dataset reads the tags from the headers (:func:`header_orientation`) to say so when
the two files of a pair carry different ones.
"""
from __future__ import annotations

from typing import Callable

import torch
from PIL import Image, ImageOps

from data.image_io import TIFF_EXTENSIONS, ImageSource, quiet_readers, readable

ORIENTATION_TAG = 0x0112    # EXIF 274; 1 means "stored as shown"

Turn = Callable[[torch.Tensor], torch.Tensor]
# Tag value -> the turn that makes stored (C, H, W) pixels look as viewers show them (EXIF 2.3,
# section 4.6.4 A: where the stored first row and column end up).
_TURNS: dict[int, Turn] = {
    1: lambda x: x,
    2: lambda x: x.flip(-1),                                # mirrored left-right
    3: lambda x: x.flip(-2, -1),                            # upside down
    4: lambda x: x.flip(-2),                                # mirrored top-bottom
    5: lambda x: x.transpose(-2, -1),                       # mirrored about the main diagonal
    6: lambda x: torch.rot90(x, -1, dims=(-2, -1)),         # a quarter turn clockwise
    7: lambda x: x.transpose(-2, -1).flip(-2, -1),          # mirrored about the other diagonal
    8: lambda x: torch.rot90(x, 1, dims=(-2, -1)),          # a quarter turn counter-clockwise
}


def exif_orientation(path: ImageSource) -> int:
    """The file's orientation tag; 1 when it has none (or a value outside 1..8), or when no
    reader understands its header (decoding the pixels then words the error)."""
    value = _pillow_tag(path)
    if value is None and path.suffix.lower() in TIFF_EXTENSIONS:
        value = _tifffile_tag(path)   # TIFFs Pillow cannot open (many channels) carry the tag too
    return value if value in _TURNS else 1


def header_orientation(path: ImageSource) -> int:
    """:func:`exif_orientation` from the header alone, cheap enough for every file of a data set
    at start-up: a PNG's eXIf chunk placed after its pixel data is not seen (Pillow would decode
    the whole image to find it)."""
    value = _pillow_tag(path, decode=False)
    if value is None and path.suffix.lower() in TIFF_EXTENSIONS:
        value = _tifffile_tag(path)
    return value if value in _TURNS else 1


def opened_header_orientation(img: Image.Image) -> int:
    """:func:`header_orientation` of a file Pillow has open (data/headers.py reads every start-up
    fact of a file from one open)."""
    value = _tag_of(img, decode=False)
    return value if value in _TURNS else 1


def _pillow_tag(path: ImageSource, decode: bool = True) -> int | None:
    try:
        with quiet_readers(), Image.open(readable(path)) as img:
            return _tag_of(img, decode)
    except Exception:  # noqa: BLE001 - no header Pillow reads: another reader may
        return None


def _tag_of(img: Image.Image, decode: bool) -> int:
    if not decode and img.format == "PNG" and "exif" not in img.info:
        return 1
    return img.getexif().get(ORIENTATION_TAG, 1)


def _tifffile_tag(path: ImageSource) -> int | None:
    import tifffile   # only TIFF files need it

    try:
        with quiet_readers(), tifffile.TiffFile(readable(path)) as tif:
            tag = tif.pages[0].tags.get(ORIENTATION_TAG)
            return 1 if tag is None else int(tag.value)
    except Exception:  # noqa: BLE001 - unreadable: the pixel reader reports the file
        return None


def upright(pixels: torch.Tensor, orientation: int) -> torch.Tensor:
    """(C, H, W) stored pixels -> the image as viewers show it."""
    return _TURNS[orientation](pixels).contiguous()


def upright_image(img: Image.Image) -> Image.Image:
    """The same for a decoded Pillow image, by Pillow's own reading of the tag."""
    return ImageOps.exif_transpose(img)
