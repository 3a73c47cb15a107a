"""One 8-bit converter for every reader: the training loader (data/image_io.py) and the dataset
tools (datasets/combine_A_and_B.py, datasets/make_edges.py) decode 16-bit and transparent
images to the same pixels, and those pixels are the ones computed by hand below."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data.image_io import load_tensor
from datasets import combine_A_and_B, make_edges

# 16-bit samples and their 8-bit values, v * 255 / 65535 rounded to the nearest integer:
#   0 -> 0;  257 -> 1 exactly;  39900 -> 155.25 -> 155;  40000 -> 155.64 -> 156 (truncating
#   v / 257 gives 155 here, the old tools' answer);  40100 -> 156.03 -> 156;  65535 -> 255.
SIXTEEN_BIT = [0, 257, 39900, 40000, 40100, 65535]
SIXTEEN_BIT_AS_8 = [0, 1, 155, 156, 156, 255]

# RGBA over a white background, out = c * a / 255 + 255 * (1 - a / 255):
#   a = 0 -> 255 whatever c;  a = 255 -> c;  c = 0, a = 102 -> 255 * 153 / 255 = 153;
#   c = 51, a = 51 -> 10.2 + 204 = 214.2 -> 214.
RGBA = [(10, 20, 30, 0), (10, 20, 30, 255), (0, 0, 0, 102), (51, 51, 51, 51)]
RGBA_ON_WHITE = [(255, 255, 255), (10, 20, 30), (153, 153, 153), (214, 214, 214)]


def _sixteen_bit(path: Path) -> Path:
    Image.fromarray(np.array([SIXTEEN_BIT], dtype=np.uint16)).save(path)
    assert Image.open(path).mode.startswith("I;16")
    return path


def _rgba(path: Path) -> Path:
    Image.fromarray(np.array([RGBA], dtype=np.uint8), mode="RGBA").save(path)
    return path


def _loader(path: Path) -> list:
    return [tuple(int(c) for c in px) for px in load_tensor(path, "RGB")[:, 0].T]


def _make_edges(path: Path) -> list:
    photo = make_edges.load_photo(path)
    return [photo.getpixel((x, 0)) for x in range(photo.width)]


def _combine(path: Path) -> list:
    folder = path.parent
    for side in ("A", "B"):
        (folder / side).mkdir(exist_ok=True)
        (folder / side / "x.png").write_bytes(path.read_bytes())
    assert combine_A_and_B.main(["--fold_A", str(folder / "A"), "--fold_B", str(folder / "B"),
                                 "--fold_AB", str(folder / "AB")]) == 0
    pair = Image.open(folder / "AB" / "x.png").convert("RGB")   # a gray pair is written gray
    half = pair.width // 2
    left = [pair.getpixel((x, 0)) for x in range(half)]
    assert left == [pair.getpixel((x + half, 0)) for x in range(half)]
    return left


READERS = {"loader": _loader, "make_edges": _make_edges, "combine_A_and_B": _combine}


@pytest.mark.parametrize("reader", sorted(READERS))
def test_16_bit_scaled_and_rounded(tmp_path: Path, reader: str):
    got = READERS[reader](_sixteen_bit(tmp_path / "deep.png"))
    assert got == [(v, v, v) for v in SIXTEEN_BIT_AS_8]


@pytest.mark.parametrize("reader", sorted(READERS))
def test_transparency_composited_onto_white(tmp_path: Path, reader: str):
    assert READERS[reader](_rgba(tmp_path / "cutout.png")) == RGBA_ON_WHITE
