"""Floating-point and 32-bit integer TIFF samples, and the 8-bit reading of 16-bit colour.

Float samples are taken as [0, 1] as stored: the same stored value means the same in every
file, at full precision, and results for them are written at 16 bits. The oracle is numpy on
the values the test writes with tifffile.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from data import DataConfig, DataError, create_dataset
from data.pixels import bits_of, read_pixels
from reporting.result_files import output_bits, save_result


def write_pair(root: Path, a: np.ndarray, b: np.ndarray, name: str = "0") -> None:
    for side, values in (("A", a), ("B", b)):
        (root / side / "train").mkdir(parents=True, exist_ok=True)
        tifffile.imwrite(root / side / "train" / f"{name}.tif", values)


def read_a(root: Path, **fields: object) -> list[dict]:
    dataset = create_dataset("paired", DataConfig(root, preprocess="none", no_flip=True, input_nc=1,
                                                  output_nc=1, **fields))
    return [dataset[i] for i in range(len(dataset))]


def test_the_same_stored_float_means_the_same_in_every_file_at_full_precision(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    first = rng.random((32, 32)).astype(np.float32) * 0.6        # max about 0.6
    second = first.copy()
    second[0, 0] = 1.0                                           # max 1.0
    first[5, 5] = second[5, 5] = 0.5
    write_pair(tmp_path, first, first, "a")
    write_pair(tmp_path, second, second, "b")
    items = read_a(tmp_path)
    for item, stored in zip(items, (first, second)):
        expected = torch.from_numpy(stored) * 2 - 1   # [0, 1] -> [-1, 1], no scaling, no 8-bit rounding
        assert torch.allclose(item["A"][0], expected, atol=1e-6, rtol=0)
        assert item["A_bits"] == 16   # written back at 16 bits
    assert items[0]["A"][0, 5, 5] == items[1]["A"][0, 5, 5] == 0.0
    assert len(torch.unique(items[0]["A"])) > 256   # more levels than 8 bits hold


def test_float_results_are_written_as_16_bit(tmp_path: Path) -> None:
    values = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
    tifffile.imwrite(tmp_path / "in.tif", values)
    pixels = read_pixels(tmp_path / "in.tif", 1)
    assert pixels.dtype == torch.float32 and bits_of(pixels) == 16
    path, _ = save_result(pixels * 2 - 1, tmp_path / "out", output_bits("auto", bits_of(pixels)))
    written = np.asarray(Image.open(path))   # gray: a 16-bit PNG
    assert written.dtype == np.uint16
    assert np.array_equal(written, np.round(values.astype(np.float64) * 65535).astype(np.uint16))


@pytest.mark.parametrize("bad, found", [(1.5, "from 0 to 1.5"), (-0.25, "from -0.25 to 0.9"),
                                        (np.nan, "NaN or infinity"), (np.inf, "NaN or infinity")])
def test_floats_outside_0_1_stop_with_one_line_or_are_skipped(tmp_path: Path, bad: float, found: str,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    good = np.full((16, 16), 0.9, np.float32)
    good[0, 0] = 0.0
    wrong = good.copy()
    wrong[3, 3] = bad
    write_pair(tmp_path, good, good, "a")
    write_pair(tmp_path, wrong, good, "b")
    path = tmp_path / "A" / "train" / "b.tif"
    with pytest.raises(DataError) as err:
        read_a(tmp_path)
    assert str(err.value).startswith(f"{path}: floating-point samples ") and found in str(err.value)
    assert "\n" not in str(err.value)
    with caplog.at_level(logging.WARNING):
        items = read_a(tmp_path, skip_bad_images=True)
    assert [Path(i["A_paths"]).name for i in items] == ["a.tif"]
    assert str(path) in caplog.text


def test_aligned_reads_floats_as_0_1_rounded_to_8_bits(tmp_path: Path) -> None:
    values = np.random.default_rng(1).random((16, 32)).astype(np.float32) * 0.5
    (tmp_path / "train").mkdir()
    tifffile.imwrite(tmp_path / "train" / "0.tif", values)
    item = create_dataset("aligned", DataConfig(tmp_path, preprocess="none", no_flip=True, input_nc=1,
                                                output_nc=1))[0]
    expected = np.rint(values[:, :16].astype(np.float64) * 255)
    assert np.array_equal(((item["A"][0].numpy().astype(np.float64) + 1) * 127.5).round(), expected)


@pytest.mark.parametrize("dtype", [np.int32, np.uint32])
@pytest.mark.parametrize("mode", ["paired", "aligned"])
def test_32_bit_integer_tiffs_are_refused_in_one_line(tmp_path: Path, dtype: type, mode: str) -> None:
    values = np.arange(16 * 32, dtype=dtype).reshape(16, 32) % 200   # fits 8 bits: no guessing from content
    if mode == "paired":
        write_pair(tmp_path, values, values)
        path = tmp_path / "A" / "train" / "0.tif"
    else:
        (tmp_path / "train").mkdir()
        path = tmp_path / "train" / "0.tif"
        tifffile.imwrite(path, values)
    with pytest.raises(DataError) as err:
        dataset = create_dataset(mode, DataConfig(tmp_path, preprocess="none", input_nc=1, output_nc=1))
        dataset[0]
    assert str(err.value).startswith(f"{path}: 32-bit integer samples are not supported")
    assert "convert the file to 16-bit" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("channels", [1, 3])
def test_aligned_rounds_16_bit_gray_and_colour_alike(tmp_path: Path, channels: int) -> None:
    rng = np.random.default_rng(2)
    shape = (16, 32) if channels == 1 else (16, 32, 3)
    values = rng.integers(0, 65536, shape, dtype=np.uint16)
    values.flat[:4] = [127, 128, 383, 65535]   # v >> 8 and round(v * 255 / 65535) differ on some
    (tmp_path / "train").mkdir()
    tifffile.imwrite(tmp_path / "train" / "0.tif", values, photometric="rgb" if channels == 3 else None)
    item = create_dataset("aligned", DataConfig(tmp_path, preprocess="none", no_flip=True, input_nc=channels,
                                                output_nc=channels))[0]
    expected = np.rint(values[:, :16].astype(np.float64) * 255 / 65535)
    got = ((item["A"].numpy().astype(np.float64) + 1) * 127.5).round()
    got = got[0] if channels == 1 else np.moveaxis(got, 0, -1)
    assert np.array_equal(got, expected)
