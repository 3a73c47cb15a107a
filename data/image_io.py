"""Finding image files and decoding them (16-bit samples: data/pixels.py). Every reader problem
(unreadable, truncated, empty, unsupported mode) becomes a :class:`DataError` whose message is
one line that starts with the file's path, so the drivers can print it as-is."""
from __future__ import annotations

import contextlib
import io
import logging
import os
import stat
import warnings
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

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

    # What a user does about it when it stops a run midway (training/loop.py says it).
    remedy = ("replace or remove that file (or add --skip_bad_images, which decodes every file at start-up and "
              "leaves out bad ones)")


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
            with quiet_readers(), Image.open(readable(self)) as img:
                check_pixel_count(self, *img.size)
                return img.size
        except DataError:
            raise
        except Image.DecompressionBombError as err:
            raise DataError(refused_bomb(self, err)) from None
        except Exception as err:  # noqa: BLE001 - any reader failure means a bad member
            size = tiff_size(self)   # as for a file: TIFFs Pillow cannot open (many channels)
            if size is None:
                raise DataError(f"{self}: cannot read image ({reason(err)})") from None
            check_pixel_count(self, *size)
            return size


ImageSource = Path | ImageBlob


def readable(source: ImageSource) -> Path | io.BytesIO:
    """What Pillow and tifffile open: the file's path, or a blob's bytes as a file object."""
    return io.BytesIO(source.data) if isinstance(source, ImageBlob) else source


def is_hidden(path: Path) -> bool:
    return path.name.startswith(".")


def list_files(root: Path) -> list[Path]:
    """All non-hidden image files (:func:`has_image_extension`) under ``root`` (recursively),
    sorted by their path string. Other files (``Thumbs.db``, ``desktop.ini``, a ``README.txt``)
    are left out, as a photo viewer leaves them out: every dataset mode and tool lists its
    files here, so one rule decides what counts as an image.

    Sorting by the plain string keeps the classic order ('1.jpg', '10.jpg', '100.jpg'), which
    decides which images ``max_dataset_size`` keeps.
    """
    found: list[Path] = []
    folder_ids: dict[str, tuple[int, int]] = {}   # each folder walked so far -> (device, inode)
    for dirpath, dirnames, filenames in os.walk(root, onerror=_unreadable_folder, followlinks=True):
        # Links are followed (datasets are often assembled from links). A link to a folder it
        # sits in would make the walk go round until the path is too long, listing every image
        # once per turn: refuse that. A folder reached through two links to one place (cityA,
        # cityB) is no loop: it is listed under both names, as `find -L` lists it.
        info = os.stat(dirpath)
        folder_ids[dirpath] = here = (info.st_dev, info.st_ino)
        ancestor = os.path.dirname(dirpath)
        while ancestor in folder_ids and ancestor != dirpath:
            if folder_ids[ancestor] == here:
                raise DataError(f"{dirpath}: symbolic link loop (a link to {ancestor}, a folder it is inside)")
            ancestor, previous = os.path.dirname(ancestor), ancestor
            if ancestor == previous:
                break
        # Pruning in place stops os.walk from descending into hidden folders (.git, .ipynb...).
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        found.extend(Path(dirpath) / f for f in filenames if not f.startswith(".") and has_image_extension(Path(f)))
    return sorted(found, key=str)


def _unreadable_folder(err: OSError) -> None:
    # os.walk's default is to skip a folder it cannot list, silently dropping its images.
    raise DataError(f"{err.filename}: cannot be read ({err.strerror})")


def has_image_extension(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


@contextlib.contextmanager
def quiet_readers() -> Iterator[None]:
    """Silence what Pillow and tifffile print about a damaged file (Pillow's UserWarnings,
    tifffile's log of every bad tag, ~30 lines): the DataError that follows names the file in
    one line, and a file that still decodes needs no comment."""
    tiff_log = logging.getLogger("tifffile")
    disabled = tiff_log.disabled
    tiff_log.disabled = True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        tiff_log.disabled = disabled


def reason(err: BaseException) -> str:
    """A reader's error as the end of a line that already names the file: Pillow's "cannot
    identify image file <_io.BytesIO object at 0x...>" names a file object (or the path again)."""
    if isinstance(err, UnidentifiedImageError):
        return "unrecognised or damaged image data"
    return first_line(err)


def check_image_file(path: Path) -> None:
    """What is wrong with ``path`` before any reader opens it (DataError): no image extension,
    not a regular file, empty."""
    if not has_image_extension(path):
        raise DataError(f"{path}: not an image file (accepted extensions: "
                        f"{', '.join(sorted(IMAGE_EXTENSIONS))})")
    try:
        info = path.stat()
    except OSError as err:
        raise DataError(f"{path}: cannot read image ({reason(err)})") from None
    if not stat.S_ISREG(info.st_mode):
        # A FIFO would block the reader forever; a device or socket is no image either.
        raise DataError(f"{path}: not a regular file")
    if info.st_size == 0:
        raise DataError(f"{path}: empty (0-byte) image file")


def read_header(path: Path) -> tuple[int, int]:
    """(width, height) from the file header only; cheap enough to run on every file at start-up."""
    check_image_file(path)
    try:
        with quiet_readers(), Image.open(path) as img:
            check_pixel_count(path, *img.size)
            return img.size
    except DataError:
        raise
    except Image.DecompressionBombError as err:
        raise DataError(refused_bomb(path, err)) from None
    except Exception as err:  # noqa: BLE001 - any reader failure on a user file means a bad file
        size = tiff_size(path)   # TIFFs Pillow cannot open (many channels) are read by data/pixels.py
        if size is None:
            raise DataError(f"{path}: cannot read image ({reason(err)})") from None
        check_pixel_count(path, *size)
        return size


def tiff_size(path: ImageSource) -> tuple[int, int] | None:
    """(width, height) of a TIFF's first page from tifffile, None when it is no readable TIFF."""
    if path.suffix.lower() not in TIFF_EXTENSIONS:
        return None
    import tifffile

    try:
        with quiet_readers(), tifffile.TiffFile(readable(path)) as tif:
            page = tif.pages[0]
            return int(page.imagewidth), int(page.imagelength)
    except Exception:  # noqa: BLE001 - not a TIFF tifffile reads either: the caller reports Pillow's error
        return None


DEFAULT_MAX_IMAGE_PIXELS = 89_478_485   # Pillow's own default (Image.MAX_IMAGE_PIXELS)
_RAISE_LIMIT = "--max_image_pixels N raises the limit, 0 removes it"


def set_max_image_pixels(limit: int) -> None:
    """Set the largest image (in pixels) any reader here, Pillow's included, decodes; 0 for no
    limit. Pillow keeps it per process: the dataset config applies it again in each loader
    worker that unpickles it (data/config.py)."""
    Image.MAX_IMAGE_PIXELS = limit or None


def check_pixel_count(path: ImageSource, width: int, height: int) -> None:
    """Refuse images over the pixel limit (``--max_image_pixels``, Pillow's decompression-bomb
    threshold) before decoding them: a small file can declare 30000 x 30000 pixels, 2.7 GB once
    decoded to RGB."""
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and width * height > limit:
        raise DataError(f"{path}: {width} x {height} pixels is over the limit of {limit} pixels per image "
                        f"(a decompression bomb, or an image far larger than training needs); refused "
                        f"({_RAISE_LIMIT})")


def refused_bomb(path: ImageSource, err: Exception) -> str:
    """The line for an image Pillow refuses to open (over twice the pixel limit)."""
    return f"{path}: refused: {first_line(err)} ({_RAISE_LIMIT})"


def open_image(path: ImageSource) -> Image.Image:
    """Open and fully decode ``path`` (truncation only shows up when the pixels are decoded)."""
    try:
        blob = isinstance(path, ImageBlob)
        if (len(path.data) if blob else path.stat().st_size) == 0:
            raise DataError(f"{path}: empty (0-byte) image file")
        with quiet_readers(), Image.open(readable(path)) as img:
            check_pixel_count(path, *img.size)
            if img.format == "TIFF" and img.mode == "I":   # Pillow's mode for 32-bit integer TIFF samples
                raise DataError(unsupported_int32(path))
            img.load()
            # A multi-frame file (TIFF, animated WebP) contributes its first frame.
            return img.copy()
    except DataError:
        raise
    except Image.DecompressionBombError as err:
        raise DataError(refused_bomb(path, err)) from None
    except Exception as err:  # noqa: BLE001 - decoders raise many types (OSError, SyntaxError)
        raise DataError(f"{path}: cannot decode image ({reason(err)})") from None


def unsupported_int32(path: ImageSource) -> str:
    return (f"{path}: 32-bit integer samples are not supported (8- or 16-bit integers, or floating "
            "point in [0, 1]); convert the file to 16-bit")


def unsupported_signed(path: ImageSource, bits: int) -> str:
    return (f"{path}: signed {bits}-bit integer samples are not supported (unsigned 8- or 16-bit "
            "integers, or floating point in [0, 1]); shift and scale them to unsigned 16-bit "
            "(0..65535) with the window that matters for the data")


def check_float_range(values: np.ndarray, path: ImageSource) -> None:
    """Floating-point samples are taken as [0, 1] as they are, with no per-file scaling, so that
    a stored 0.5 means the same in every file: anything else is refused, not clipped."""
    if values.size == 0:
        return
    low, high = float(np.min(values)), float(np.max(values))
    if not (np.isfinite(low) and np.isfinite(high)):
        raise DataError(f"{path}: floating-point samples include NaN or infinity; they must lie in [0, 1]")
    if low < 0.0 or high > 1.0:
        raise DataError(f"{path}: floating-point samples range from {low:g} to {high:g}; they must lie in [0, 1]")


def to_mode(img: Image.Image, mode: str, path: ImageSource | str = "<image>") -> Image.Image:
    """Convert any stored mode to 8-bit ``"RGB"`` or ``"L"``.

    Transparent pixels are composited onto white: the colour hidden under alpha 0 is
    arbitrary (often black), and white is what a viewer shows for a sketch on a transparent
    background.
    """
    if mode not in ("RGB", "L"):
        raise ValueError(f"to_mode: mode must be 'RGB' or 'L', not {mode!r}")
    if img.mode in _WIDE_MODES:
        img = _wide_to_l(img, path)
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


def _wide_to_l(img: Image.Image, path: ImageSource | str) -> Image.Image:
    values = np.asarray(img).astype(np.float64)
    if img.mode == "F":
        # 8 bits because this converter's callers (aligned, the datasets/ tools) give 8 bits;
        # data/pixels.py keeps floating-point samples at full precision.
        check_float_range(values, path)
        scale = 255.0
    else:
        # 16-bit samples, "I" included: Pillow's netpbm of maxval > 255, scaled to 0..65535. The
        # depth is the file's, never guessed from its values (a dark 16-bit frame stays 16-bit).
        scale = 255.0 / 65535.0
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
    raise DataError(f"{dataroot}: no '{phase}' folder in --dataroot (expected {folder}/)")
