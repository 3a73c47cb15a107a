"""The user's own folders as they come: tools that read images as the loader does
(datasets/combine_A_and_B.py, datasets/make_edges.py), pairs whose EXIF orientation tags differ,
folders reached through links, and images over the pixel limit."""
from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from data import DataConfig, create_dataset
from data.image_io import DEFAULT_MAX_IMAGE_PIXELS, DataError, list_files
from datasets.combine_A_and_B import main as combine_main
from datasets.make_edges import main as edges_main
from options.parse import build_parser

RNG = np.random.default_rng(21)


def _pair_folders(root: Path) -> None:
    for side in "AB":
        (root / side / "train").mkdir(parents=True, exist_ok=True)


# W4, U1: the tools decode as the loader ---------------------------------------------------------

def test_combine_rounds_16_bit_colour_and_reads_float_rgb(tmp_path: Path) -> None:
    _pair_folders(tmp_path)
    sixteen = {s: RNG.integers(0, 65536, (6, 10, 3)).astype(np.uint16) for s in "AB"}
    floats = {s: RNG.random((6, 10, 3)).astype(np.float32) for s in "AB"}
    for s in "AB":
        tifffile.imwrite(tmp_path / s / "train" / "x.tif", sixteen[s], photometric="rgb")
        tifffile.imwrite(tmp_path / s / "train" / "f.tif", floats[s], photometric="rgb")
    assert combine_main(["--fold_A", str(tmp_path / "A"), "--fold_B", str(tmp_path / "B"),
                         "--fold_AB", str(tmp_path / "AB"), "--no_multiprocessing"]) == 0
    x = np.asarray(Image.open(tmp_path / "AB" / "train" / "x.tif"))
    f = np.asarray(Image.open(tmp_path / "AB" / "train" / "f.tif"))
    for s, half in (("A", slice(0, 10)), ("B", slice(10, 20))):
        assert np.array_equal(x[:, half], np.rint(sixteen[s].astype(np.float64) * 255 / 65535))     # rounded, not v >> 8
        assert np.array_equal(f[:, half], np.rint(floats[s].astype(np.float64) * 255))


def test_make_edges_photo_half_is_the_loaders_rounding(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    photo = RNG.integers(0, 65536, (16, 16, 3)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "in" / "p.tif", photo, photometric="rgb")
    assert edges_main(["--input", str(tmp_path / "in"), "--output", str(tmp_path / "out")]) == 0
    pair = np.asarray(Image.open(tmp_path / "out" / "train" / "p.png"))
    assert np.array_equal(pair[:, 16:], np.rint(photo.astype(np.float64) * 255 / 65535))


# W5 --------------------------------------------------------------------------------------------

def test_make_edges_names_same_stem_photos_apart(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "in").mkdir()
    photos = {"a.jpg": np.full((16, 16, 3), 200, np.uint8), "a.png": np.zeros((16, 16, 3), np.uint8),
              "b.png": np.full((16, 16, 3), 90, np.uint8)}
    for name, pixels in photos.items():
        Image.fromarray(pixels).save(tmp_path / "in" / name, quality=100)
    assert edges_main(["--input", str(tmp_path / "in"), "--output", str(tmp_path / "out")]) == 0
    written = sorted(p.name for p in (tmp_path / "out" / "train").iterdir())
    assert written == ["a.png", "a_png.png", "b.png"]   # translate.py's names
    right = {name: np.asarray(Image.open(tmp_path / "out" / "train" / name))[:, 16:] for name in written}
    assert abs(int(right["a.png"].mean()) - 200) <= 2 and right["a_png.png"].max() == 0
    assert "wrote 3 edges|photo pairs" in capsys.readouterr().out


# W6 --------------------------------------------------------------------------------------------

def _exif_pair(root: Path, h: int, w: int) -> None:
    """A phone photo stored sideways with tag 6, and its target saved upright (no tag)."""
    _pair_folders(root)
    upright = RNG.integers(0, 256, (h, w, 3)).astype(np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.rot90(upright, 1).copy()).save(root / "A" / "train" / "p.jpg", exif=exif.tobytes())
    Image.fromarray(upright).save(root / "B" / "train" / "p.png")


def test_size_error_of_a_turned_pair_names_the_exif_tags(tmp_path: Path) -> None:
    _exif_pair(tmp_path, 20, 32)
    with pytest.raises(DataError) as err:
        create_dataset("paired", DataConfig(dataroot=tmp_path, preprocess="none"))
    line = str(err.value)
    assert "pairs of different sizes" in line and "EXIF orientation tags differ (p.jpg 6, p.png 1)" in line
    assert "\n" not in line


def test_square_pair_with_different_tags_warns_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _exif_pair(tmp_path, 24, 24)
    with caplog.at_level(logging.WARNING, logger="data.paired"):
        create_dataset("paired", DataConfig(dataroot=tmp_path, preprocess="none"))
    warnings = [r.getMessage() for r in caplog.records if "EXIF" in r.getMessage()]
    assert len(warnings) == 1 and "1 pair(s)" in warnings[0] and "p.jpg 6, p.png 1" in warnings[0]


# U4 --------------------------------------------------------------------------------------------

def test_two_links_to_one_folder_are_no_loop(tmp_path: Path) -> None:
    (tmp_path / "pool").mkdir()
    (tmp_path / "ds").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "pool" / "1.png")
    os.symlink(tmp_path / "pool", tmp_path / "ds" / "cityA")
    os.symlink(tmp_path / "pool", tmp_path / "ds" / "cityB")
    assert [p.relative_to(tmp_path) for p in list_files(tmp_path / "ds")] == [
        Path("ds/cityA/1.png"), Path("ds/cityB/1.png")]
    os.symlink(tmp_path / "ds", tmp_path / "pool" / "up")   # now a real loop: ds/cityA/up is ds
    with pytest.raises(DataError, match="symbolic link loop"):
        list_files(tmp_path / "ds")


# U6 --------------------------------------------------------------------------------------------

def test_max_image_pixels_raises_and_removes_the_limit(tmp_path: Path) -> None:
    (tmp_path / "train").mkdir()
    Image.new("RGB", (64, 32), (10, 20, 30)).save(tmp_path / "train" / "x.png")
    try:
        with pytest.raises(DataError, match=r"x.png: 64 x 32 pixels is over the limit of 1500 .*--max_image_pixels"):
            create_dataset("single", DataConfig(dataroot=tmp_path, preprocess="none", max_image_pixels=1500))
        # over twice the limit Pillow itself refuses to open the file: the line names the option too
        with pytest.raises(DataError, match=r"x.png: refused: .* \(--max_image_pixels N raises the limit"):
            create_dataset("single", DataConfig(dataroot=tmp_path, preprocess="none", max_image_pixels=1000))
        assert len(create_dataset("single", DataConfig(dataroot=tmp_path, preprocess="none",
                                                       max_image_pixels=0))) == 1
        assert Image.MAX_IMAGE_PIXELS is None
    finally:
        DataConfig(dataroot=tmp_path)    # back to the default limit
    assert Image.MAX_IMAGE_PIXELS == DEFAULT_MAX_IMAGE_PIXELS


@pytest.mark.parametrize("is_train", [True, False])
def test_max_image_pixels_is_a_data_option(is_train: bool) -> None:
    opt = build_parser(is_train).parse_args(["--dataroot", "x", "--max_image_pixels", "0"])
    assert opt.max_image_pixels == 0
    # data_config copies every option named as a DataConfig field
    assert "max_image_pixels" in {f.name for f in dataclasses.fields(DataConfig)}
    assert build_parser(is_train).parse_args([]).max_image_pixels == DEFAULT_MAX_IMAGE_PIXELS
