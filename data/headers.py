"""What the start-up checks of a folder data set read from each file's header, in one open.

A paired data set checks three facts of every file before training starts: its size
(image_io.read_header), its EXIF orientation tag (orientation.header_orientation) and the
channels it decodes to (pixels.channel_layout). Each reader opens the file itself; here the
three come from one open for every file Pillow reads, which is all but TIFFs (those, and any
file Pillow does not open, go through the three readers, which also word the errors).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from PIL import Image

from data.image_io import TIFF_EXTENSIONS, check_image_file, check_pixel_count, quiet_readers, read_header
from data.orientation import header_orientation, opened_header_orientation
from data.pixels import Channels, channel_layout, opened_channels


@dataclass(frozen=True)
class Header:
    size: tuple[int, int]   # (width, height)
    orientation: int        # the EXIF tag as header_orientation reads it, 1 when none
    channels: Channels


def read_headers(path: Path) -> Header:
    """The file's :class:`Header`; DataError, naming the file, for a file that is no readable image."""
    check_image_file(path)
    if path.suffix.lower() not in TIFF_EXTENSIONS:
        try:
            with quiet_readers(), Image.open(path) as img:
                header = Header(img.size, opened_header_orientation(img), opened_channels(img))
        except Exception:  # noqa: BLE001 - the readers below say what is wrong with it
            pass
        else:
            check_pixel_count(path, *header.size)
            return header
    return Header(read_header(path), header_orientation(path), channel_layout(path))


def header_memo() -> Callable[[Path], Header]:
    """``read_headers`` that reads each file once however often it is asked (one data set's checks)."""
    seen: dict[Path, Header] = {}

    def header(path: Path) -> Header:
        if path not in seen:
            seen[path] = read_headers(path)
        return seen[path]
    return header
