"""data/headers.py: a file's start-up facts from one open, equal to what the three readers that
each open the file say (the oracle), and a paired folder checked with one open per file."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from data import DataError, create_dataset
from data.headers import Header, read_headers
from data.image_io import read_header
from data.orientation import ORIENTATION_TAG, header_orientation
from data.pixels import channel_layout
from tests.test_paired_data import cfg, gray, save


def _rgb(h: int = 5, w: int = 7) -> np.ndarray:
    return np.arange(h * w * 3, dtype=np.uint8).reshape(h, w, 3)


def _tagged(path: Path, pixels: np.ndarray, orientation: int) -> None:
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = orientation
    Image.fromarray(pixels).save(path, exif=exif)


FILES = {
    "gray.png": lambda p: Image.fromarray(gray(7)).save(p),
    "rgb.jpg": lambda p: Image.fromarray(_rgb()).save(p, quality=90),
    "turned.jpg": lambda p: _tagged(p, _rgb(), 6),
    "turned.png": lambda p: _tagged(p, _rgb(), 8),
    "odd_tag.png": lambda p: _tagged(p, _rgb(), 9),
    "rgba.png": lambda p: Image.fromarray(np.full((4, 6, 4), 200, np.uint8)).save(p),
    "gray_alpha.png": lambda p: Image.fromarray(np.full((4, 6, 2), 90, np.uint8), mode="LA").save(p),
    "wide.png": lambda p: Image.fromarray(gray(4000, dtype=np.uint16)).save(p),
    "paletted.png": lambda p: Image.fromarray(_rgb()).convert("P").save(p),
    "rgb.webp": lambda p: Image.fromarray(_rgb()).save(p, lossless=True),
    "gray.ppm": lambda p: Image.fromarray(gray(9)).save(p),
    "rgb.bmp": lambda p: Image.fromarray(_rgb()).save(p),
    "five.tif": lambda p: tifffile.imwrite(p, np.zeros((5, 7, 5), np.uint16), photometric="minisblack",
                                           planarconfig="contig", extratags=[(ORIENTATION_TAG, "H", 1, 3, True)]),
    "rgb.tif": lambda p: tifffile.imwrite(p, _rgb()),
}


@pytest.mark.parametrize("name", sorted(FILES))
def test_one_open_says_what_the_three_readers_say(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    FILES[name](path)
    assert read_headers(path) == Header(read_header(path), header_orientation(path), channel_layout(path))


@pytest.mark.parametrize("content, words", [(b"", "empty (0-byte) image file"),
                                            (b"not an image at all", "cannot read image")])
def test_a_bad_file_gets_the_readers_error(tmp_path: Path, content: bytes, words: str) -> None:
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(DataError) as got:
        read_headers(path)
    with pytest.raises(DataError) as expected:
        read_header(path)
    assert str(got.value) == str(expected.value) and words in str(got.value)


def test_a_paired_folder_opens_each_file_once_at_start_up(tmp_path: Path, monkeypatch) -> None:
    for i in range(4):
        save(tmp_path / "A" / "train" / f"{i}.png", gray(10 + i))
        save(tmp_path / "B" / "train" / f"{i}.jpg", gray(60 + i))
    opened: list[str] = []
    real_open = Image.open
    monkeypatch.setattr(Image, "open", lambda fp, *a, **kw: (opened.append(Path(fp).name), real_open(fp, *a, **kw))[1])
    dataset = create_dataset("paired", cfg(tmp_path))
    assert len(dataset) == 4
    assert sorted(opened) == sorted([f"{i}.png" for i in range(4)] + [f"{i}.jpg" for i in range(4)])
