"""Bit depth and channels with no network involved: every value read and written back is the
value it was (8 and 16 bits, 1, 3 and N channels), and the 8-bit path keeps its numbers."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from data.image_io import load_tensor
from data.pixels import WIDE, bits_of, read_pixels
from data.transforms import to_signed_unit
from reporting.images import to_uint8
from reporting.result_files import output_bits, quantize_bits, result_suffix, save_result
from util.errors import UserError


def test_every_16_bit_value_survives_the_trip_through_float() -> None:
    values = torch.arange(65536, dtype=WIDE).view(1, 256, 256)
    as_float = to_signed_unit(values)
    assert as_float.dtype == torch.float32 and as_float.min() == -1 and as_float.max() == 1
    assert np.array_equal(quantize_bits(as_float, 16), values[0].numpy().astype(np.uint16))


def test_every_8_bit_value_survives_and_the_8_bit_writer_is_unchanged() -> None:
    values = torch.arange(256, dtype=torch.uint8).view(1, 16, 16)
    as_float = to_signed_unit(values)
    assert torch.equal(as_float, values.float() / 255.0 * 2 - 1)      # the classic ToTensor + Normalize
    assert np.array_equal(quantize_bits(as_float, 8), values[0].numpy())
    noisy = torch.rand(3, 5, 7, generator=torch.Generator().manual_seed(0)) * 2.2 - 1.1
    assert np.array_equal(quantize_bits(noisy, 8), to_uint8(noisy))   # what test.py wrote before


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16_bit_gray_files_are_read_and_written_exactly(tmp_path: Path, suffix: str) -> None:
    values = np.arange(65536, dtype=np.uint16).reshape(256, 256)
    source = tmp_path / f"in{suffix}"
    (Image.fromarray(values).save(source) if suffix == ".png" else tifffile.imwrite(source, values))
    pixels = read_pixels(source, 1)
    assert bits_of(pixels) == 16 and pixels.dtype == WIDE
    written, _ = save_result(to_signed_unit(pixels), tmp_path / "out", output_bits("auto", bits_of(pixels)))
    assert written.suffix == ".png" and np.array_equal(np.asarray(Image.open(written)), values)


def test_multichannel_16_bit_tiff_round_trip(tmp_path: Path) -> None:
    values = np.random.default_rng(0).integers(0, 65536, (5, 7, 4), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "in.tif", values, photometric="minisblack", planarconfig="contig")
    pixels = read_pixels(tmp_path / "in.tif")
    assert tuple(pixels.shape) == (4, 5, 7)
    written, _ = save_result(to_signed_unit(pixels), tmp_path / "out", 16)
    assert written.suffix == ".tif" and np.array_equal(tifffile.imread(written), values)
    rgb16, _ = save_result(to_signed_unit(pixels[:3]), tmp_path / "rgb", 16)
    assert rgb16.suffix == ".tif" and np.array_equal(tifffile.imread(rgb16), values[..., :3])
    back = read_pixels(rgb16, 3)
    assert bits_of(back) == 16 and torch.equal(back, pixels[:3])           # 3 channels, 16 bits, in again
    gray = read_pixels(rgb16, 1)    # colour to gray: Pillow's weights (299, 587, 114) / 1000, rounded
    oracle = np.rint(values[..., :3].astype(np.float64) @ np.array([299, 587, 114]) / 1000)
    assert np.array_equal(gray[0].numpy(), oracle)


def test_forcing_the_depth(tmp_path: Path) -> None:
    values = np.array([[0, 257, 40000, 65535]], dtype=np.uint16)
    tifffile.imwrite(tmp_path / "in.tif", values)
    pixels = read_pixels(tmp_path / "in.tif", 1)
    eight, _ = save_result(to_signed_unit(pixels), tmp_path / "eight", output_bits("8", 16))
    # round(v * 255 / 65535): 40000 -> 155.64 -> 156
    assert Image.open(eight).mode == "L" and np.asarray(Image.open(eight)).tolist() == [[0, 1, 156, 255]]
    eight_in = torch.tensor([[[0, 1, 156, 255]]], dtype=torch.uint8)
    sixteen, _ = save_result(to_signed_unit(eight_in), tmp_path / "sixteen", output_bits("16", 8))
    assert np.asarray(Image.open(sixteen)).tolist() == [[0, 257, 40092, 65535]]   # 257 v


def test_8_bit_files_decode_as_before(tmp_path: Path) -> None:
    rgba = np.random.default_rng(1).integers(0, 256, (6, 5, 4), dtype=np.uint8)
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "x.png")
    Image.fromarray(rgba[..., :3]).save(tmp_path / "x.tif")
    for name in ("x.png", "x.tif"):
        for mode, channels in (("RGB", 3), ("L", 1)):
            assert torch.equal(read_pixels(tmp_path / name, channels), load_tensor(tmp_path / name, mode))


def test_suffixes_by_channels_and_depth() -> None:
    assert [result_suffix(c, b) for c, b in ((1, 8), (3, 8), (1, 16), (3, 16), (2, 8), (4, 16))] == \
        [".png", ".png", ".png", ".tif", ".tif", ".tif"]


def test_single_folder_inputs_keep_16_bits(tmp_path: Path) -> None:
    from data import DataConfig, create_dataset

    values = np.arange(0, 65536, 1000, dtype=np.uint16)[:60].reshape(6, 10)
    tifffile.imwrite(tmp_path / "x.tif", values)
    item = create_dataset("single", DataConfig(tmp_path, input_nc=1, preprocess="pad", size_divisor=2, no_flip=True))[0]
    assert item["A_bits"] == 16 and item["A_size"].tolist() == [6, 10]
    assert np.array_equal(quantize_bits(item["A"], 16), values)


def test_aspect_ratio_applies_to_8_bit_results_only(tmp_path: Path) -> None:
    from reporting.result_files import save_test_image

    image = torch.zeros(1, 4, 4)
    path, pixels = save_test_image(image, tmp_path / "eight", 8, aspect_ratio=2.0)
    assert path.suffix == ".png" and pixels.shape == (4, 8)
    # The project's user-error type: test.py prints it as one line, with no traceback.
    with pytest.raises(UserError, match="--aspect_ratio 2.0 resizes 8-bit gray or RGB results only"):
        save_test_image(image, tmp_path / "sixteen", 16, aspect_ratio=2.0)
    with pytest.raises(UserError, match="not 8-bit results of 4 channel"):
        save_test_image(torch.zeros(4, 4, 4), tmp_path / "four", 8, aspect_ratio=2.0)
    assert not list(tmp_path.glob("sixteen*"))


def test_16_bit_colour_png_is_read_at_16_bits(tmp_path: Path) -> None:
    import struct
    import zlib

    values = (np.arange(2 * 3 * 3).reshape(2, 3, 3) * 3000).astype(">u2")
    rows = b"".join(b"\x00" + values[y].tobytes() for y in range(2))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    (tmp_path / "rgb16.png").write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 3, 2, 16, 2, 0, 0, 0))
                                         + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
    pixels = read_pixels(tmp_path / "rgb16.png", 3)
    assert bits_of(pixels) == 16   # data/wide_png.py: both bytes of every sample, as stored
    assert np.array_equal(pixels.permute(1, 2, 0).numpy(), values.astype(np.int64))
