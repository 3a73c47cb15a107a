"""Finding image files and decoding them (16-bit samples: data/pixels.py). Every reader problem
(unreadable, truncated, empty, unsupported mode) becomes a :class:`DataError` whose message is
one line that starts with the file's path, so the drivers can print it as-is."""
from __future__ import annotations

import io
import logging
import os
import stat
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from data.image_ops import pil_to_uint8_tensor
from util.errors import UserError, first_line

logger = logging.getLogger(__name__)

# The one list of image file extensions: the datasets, translate.py, the datasets/ tools and the
# benchmarks all read it, so a file one of them writes is one the others accept.
TIFF_EXTENSIONS = frozenset({".tif", ".tiff"})   # the files tifffile reads and writes (16-bit, N channels)
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".webp"}) | TIFF_EXTENSIONS

# Modes whose samples are wider than 8 bits; PIL's own convert("L") clips them at 255
# instead of rescaling, which turns a 16-bit photo into a white sheet.
_WIDE_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I", "F"})
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})


class DataError(UserError, ValueError):
    """A dataset file or folder that cannot be used; the message names it in one line."""


class ImageBlob:
    """An image file's bytes read from somewhere other than a folder (a tar shard), under the
    name that error messages and ``A_paths`` show; the readers here take it where they take a path."""

    def __init__(self, name: str, data: bytes) -> None:
        self.name = name
        self.data = data

    def __str__(self) -> str:
        return self.name

    @property
    def suffix(self) -> str:
        """The stored file's extension, as ``Path.suffix`` gives it for a file in a folder."""
        return Path(self.name).suffix

    def size(self) -> tuple[int, int]:
        """(width, height) from the header alone."""
        try:
            with Image.open(readable(self)) as img:
                check_pixel_count(self, *img.size)
                return img.size
        except DataError:
            raise
        except Exception as err:  # noqa: BLE001 - any reader failure means a bad member
            size = tiff_size(self)   # as for a file: TIFFs Pillow cannot open (many channels)
            if size is None:
                raise DataError(f"{self}: cannot read image ({first_line(err)})") from None
            check_pixel_count(self, *size)
            return size


ImageSource = Path | ImageBlob


def readable(source: ImageSource) -> Path | io.BytesIO:
    """What Pillow and tifffile open: the file's path, or a blob's bytes as a file object."""
    return io.BytesIO(source.data) if isinstance(source, ImageBlob) else source


def is_hidden(path: Path) -> bool:
    return path.name.startswith(".")


def list_files(root: Path) -> list[Path]:
    """All non-hidden files under ``root`` (recursively), sorted by their path string.

    Sorting by the plain string keeps the classic order ('1.jpg', '10.jpg', '100.jpg'), which
    decides which images ``max_dataset_size`` keeps.
    """
    found: list[Path] = []
    visited: dict[tuple[int, int], str] = {}
    for dirpath, dirnames, filenames in os.walk(root, onerror=_unreadable_folder, followlinks=True):
        # Links are followed (datasets are often assembled from links), so a link to a folder
        # above would make the walk go round until the path is too long, listing every image
        # once per turn: refuse it instead.
        info = os.stat(dirpath)
        seen = visited.setdefault((info.st_dev, info.st_ino), dirpath)
        if seen != dirpath:
            raise DataError(f"{dirpath}: symbolic link loop (the same folder as {seen})")
        # Pruning in place stops os.walk from descending into hidden folders (.git, .ipynb...).
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        found.extend(Path(dirpath) / f for f in filenames if not f.startswith("."))
    return sorted(found, key=str)


def _unreadable_folder(err: OSError) -> None:
    # os.walk's default is to skip a folder it cannot list, silently dropping its images.
    raise DataError(f"{err.filename}: cannot be read ({err.strerror})")


def has_image_extension(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def read_header(path: Path) -> tuple[int, int]:
    """(width, height) from the file header only; cheap enough to run on every file at start-up."""
    if not has_image_extension(path):
        raise DataError(f"{path}: not an image file (accepted extensions: "
                        f"{', '.join(sorted(IMAGE_EXTENSIONS))})")
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            # A FIFO would block the reader forever; a device or socket is no image either.
            raise DataError(f"{path}: not a regular file")
        if info.st_size == 0:
            raise DataError(f"{path}: empty (0-byte) image file")
        with Image.open(path) as img:
            check_pixel_count(path, *img.size)
            return img.size
    except DataError:
        raise
    except Image.DecompressionBombError as err:
        raise DataError(f"{path}: refused: {first_line(err)}") from None
    except Exception as err:  # noqa: BLE001 - any reader failure on a user file means a bad file
        size = tiff_size(path)   # TIFFs Pillow cannot open (many channels) are read by data/pixels.py
        if size is None:
            raise DataError(f"{path}: cannot read image ({first_line(err)})") from None
        check_pixel_count(path, *size)
        return size


def tiff_size(path: ImageSource) -> tuple[int, int] | None:
    """(width, height) of a TIFF's first page from tifffile, None when it is no readable TIFF."""
    if path.suffix.lower() not in TIFF_EXTENSIONS:
        return None
    import tifffile

    try:
        with tifffile.TiffFile(readable(path)) as tif:
            page = tif.pages[0]
            return int(page.imagewidth), int(page.imagelength)
    except Exception:  # noqa: BLE001 - not a TIFF tifffile reads either: the caller reports Pillow's error
        return None


def check_pixel_count(path: ImageSource, width: int, height: int) -> None:
    """Refuse images over PIL's decompression-bomb threshold before decoding them: a small
    file can declare 30000 x 30000 pixels, 2.7 GB once decoded to RGB."""
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and width * height > limit:
        raise DataError(f"{path}: {width} x {height} pixels is over the limit of {limit} pixels per image "
                        "(a decompression bomb, or an image far larger than training needs); refused")


def open_image(path: ImageSource) -> Image.Image:
    """Open and fully decode ``path`` (truncation only shows up when the pixels are decoded)."""
    try:
        blob = isinstance(path, ImageBlob)
        if (len(path.data) if blob else path.stat().st_size) == 0:
            raise DataError(f"{path}: empty (0-byte) image file")
        with Image.open(readable(path)) as img:
            check_pixel_count(path, *img.size)
            img.load()
            # A multi-frame file (TIFF, animated WebP) contributes its first frame.
            return img.copy()
    except DataError:
        raise
    except Exception as err:  # noqa: BLE001 - decoders raise many types (OSError, SyntaxError, bombs)
        raise DataError(f"{path}: cannot decode image ({first_line(err)})") from None


def to_mode(img: Image.Image, mode: str, path: ImageSource | str = "<image>") -> Image.Image:
    """Convert any stored mode to 8-bit ``"RGB"`` or ``"L"``.

    Transparent pixels are composited onto white: the colour hidden under alpha 0 is
    arbitrary (often black), and white is what a viewer shows for a sketch on a transparent
    background.
    """
    if mode not in ("RGB", "L"):
        raise ValueError(f"to_mode: mode must be 'RGB' or 'L', not {mode!r}")
    if img.mode in _WIDE_MODES:
        img = _wide_to_l(img)
    if img.mode == "P":
        # Palette images may carry a transparent index; expand it into an alpha channel.
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in _ALPHA_MODES:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba).convert("RGB")
    if img.mode == mode:
        return img
    try:
        return img.convert(mode)
    except (ValueError, OSError) as err:
        raise DataError(f"{path}: unsupported image mode {img.mode} ({first_line(err)})") from None


def _wide_to_l(img: Image.Image) -> Image.Image:
    values = np.asarray(img).astype(np.float64)
    if img.mode == "F":
        # Float images are taken as [0, 1] when they fit, otherwise as already 8-bit.
        scale = 255.0 if values.size and values.max() <= 1.0 else 1.0
    elif img.mode == "I" and values.size and values.max() <= 255:
        scale = 1.0       # a 32-bit container holding 8-bit values
    else:
        scale = 255.0 / 65535.0   # 16-bit samples
    return Image.fromarray(np.clip(np.rint(values * scale), 0, 255).astype(np.uint8), mode="L")


def load_tensor(path: ImageSource, mode: str) -> torch.Tensor:
    """Decode ``path`` into a uint8 tensor (C, H, W) with C = 3 for "RGB" and 1 for "L"."""
    return pil_to_uint8_tensor(to_mode(open_image(path), mode, path))


def pil_to_uint8(img: Image.Image, mode: str, path: ImageSource | str = "<image>") -> torch.Tensor:
    return pil_to_uint8_tensor(to_mode(img, mode, path))


def image_folder(dataroot: Path, phase: str, phase_optional: bool = False) -> Path:
    """The folder a dataset reads: ``dataroot/phase``; with ``phase_optional`` the dataroot
    itself when it has no such subfolder (a plain folder of photos or inputs)."""
    if not dataroot.exists():
        raise DataError(f"{dataroot}: --dataroot does not exist")
    if not dataroot.is_dir():
        raise DataError(f"{dataroot}: --dataroot is not a folder")
    folder = dataroot / phase
    try:
        if folder.is_dir():
            return folder
    except OSError as err:  # a --dataroot this user may not look into
        raise DataError(f"{dataroot}: cannot be read ({err.strerror})") from None
    if phase_optional:
        return dataroot
    raise DataError(f"{folder}: no '{phase}' folder in --dataroot (expected {dataroot}/{phase}/)")
