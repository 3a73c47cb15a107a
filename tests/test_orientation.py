"""translate.py turns a photo upright by its EXIF orientation tag, as viewers show it
(data/orientation.py), checked against Pillow's own ImageOps.exif_transpose; --exif_orientation
ignore translates the stored pixels."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image, ImageOps

from data.orientation import ORIENTATION_TAG, exif_orientation, upright
from tests.test_translate import run, save_ours

STORED = np.random.default_rng(0).integers(0, 256, (12, 20, 3), dtype=np.uint8)   # 20 wide, 12 high


def tagged(path: Path, pixels: np.ndarray, orientation: int) -> Path:
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = orientation
    Image.fromarray(pixels).save(path, exif=exif)
    return path


@pytest.mark.parametrize("orientation", range(1, 9))
def test_each_tag_turns_as_pillow_does(tmp_path: Path, orientation: int) -> None:
    path = tagged(tmp_path / "p.png", STORED, orientation)
    assert exif_orientation(path) == orientation
    with Image.open(path) as image:
        expected = np.asarray(ImageOps.exif_transpose(image))
    got = upright(torch.from_numpy(STORED).permute(2, 0, 1), orientation).permute(1, 2, 0).numpy()
    assert got.shape == expected.shape and np.array_equal(got, expected)


def test_untagged_and_unreadable_files_count_as_stored(tmp_path: Path) -> None:
    Image.fromarray(STORED).save(tmp_path / "plain.png")
    (tmp_path / "junk.png").write_bytes(b"not an image")
    assert exif_orientation(tmp_path / "plain.png") == 1 and exif_orientation(tmp_path / "junk.png") == 1
    assert exif_orientation(tagged(tmp_path / "odd.png", STORED, 9)) == 1   # outside 1..8: no turn


def test_a_many_channel_tiff_tag_is_read_by_tifffile(tmp_path: Path) -> None:
    # Pillow cannot open 5 samples per pixel; the tag is still honoured.
    pixels = np.zeros((5, 7, 5), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "m.tif", pixels, photometric="minisblack", planarconfig="contig",
                     extratags=[(ORIENTATION_TAG, "H", 1, 8, True)])
    assert exif_orientation(tmp_path / "m.tif") == 8


@pytest.mark.parametrize("model", ["pix2pix", "colorization"])
def test_translate_writes_the_result_of_the_upright_photo(tmp_path: Path, model: str) -> None:
    """A photo stored sideways with tag 6 gives the result of the same photo stored upright
    (byte for byte); with --exif_orientation ignore, the result of the stored pixels."""
    if model == "colorization":
        save_ours(tmp_path / "ck" / "exp", model="colorization", input_nc=1, output_nc=2)
    else:
        save_ours(tmp_path / "ck" / "exp")
    phone, turned, stored = (tmp_path / name for name in ("phone", "turned", "stored"))
    for folder in (phone, turned, stored):
        folder.mkdir()
    tagged(phone / "p.png", STORED, 6)
    Image.fromarray(np.rot90(STORED, -1).copy()).save(turned / "p.png")   # a quarter turn clockwise
    Image.fromarray(STORED).save(stored / "p.png")

    def result(folder: Path, *flags: str) -> np.ndarray:
        out = tmp_path / f"out_{folder.name}{'_'.join(flags)}"
        assert run(tmp_path, "--name", "exp", "--input", str(folder), "--output", str(out), *flags) == 0
        return np.asarray(Image.open(out / "p.png"))

    upright_result = result(phone)
    assert upright_result.shape[:2] == (20, 12)
    assert np.array_equal(upright_result, result(turned))
    assert np.array_equal(result(phone, "--exif_orientation", "ignore"), result(stored))
