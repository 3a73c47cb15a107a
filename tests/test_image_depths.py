"""A file's numbers follow what it declares (depth, photometric, alpha, sample type), never its
content, and every reader gives the same numbers for it: data/pixels.py, data/wide_png.py,
data/image_io.py. The oracles are the arrays written, turned by hand."""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from data import DataConfig, create_dataset
from data.image_io import DataError, to_mode
from data.pixels import WIDE, bits_of, channel_layout, native_channels, open_eight_bit, read_pixels

RNG = np.random.default_rng(20)


def _png16(path: Path, samples: np.ndarray, colour_type: int) -> None:
    """A 16-bit PNG written by hand (Pillow cannot write 16-bit colour), each row with another of
    the five filters, so the decoder must undo all of them."""
    h, w = samples.shape[:2]
    rows = samples.astype(">u2").reshape(h, -1).view(np.uint8).reshape(h, -1).astype(np.int64)
    bpp = 2 * (samples.shape[2] if samples.ndim == 3 else 1)
    raw = b""
    for y in range(h):
        x = rows[y]
        left = np.concatenate([np.zeros(bpp, np.int64), x[:-bpp]])
        up = rows[y - 1] if y else np.zeros_like(x)
        upleft = np.concatenate([np.zeros(bpp, np.int64), up[:-bpp]]) if y else np.zeros_like(x)
        kind = y % 5
        if kind == 4:   # Paeth
            p = left + up - upleft
            pa, pb, pc = abs(p - left), abs(p - up), abs(p - upleft)
            pred = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, upleft))
        else:
            pred = [np.zeros_like(x), left, up, (left + up) // 2][kind]
        raw += bytes([kind]) + ((x - pred) % 256).astype(np.uint8).tobytes()

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


# W2 --------------------------------------------------------------------------------------------

def test_miniswhite_tiff_is_inverted_at_16_bits_as_at_8(tmp_path: Path) -> None:
    v8 = RNG.integers(0, 256, (6, 9)).astype(np.uint8)
    tifffile.imwrite(tmp_path / "z8.tif", v8, photometric="miniswhite")
    tifffile.imwrite(tmp_path / "z16.tif", v8.astype(np.uint16) * 257, photometric="miniswhite")
    tifffile.imwrite(tmp_path / "f.tif", v8.astype(np.float32) / 255, photometric="miniswhite")
    eight, sixteen = read_pixels(tmp_path / "z8.tif", 1), read_pixels(tmp_path / "z16.tif", 1)
    assert sixteen.dtype == WIDE
    assert np.array_equal(sixteen[0].numpy(), 65535 - 257 * v8.astype(np.int64))
    assert np.array_equal(eight[0].numpy(), 255 - v8)              # Pillow's own inversion
    np.testing.assert_allclose(read_pixels(tmp_path / "f.tif", 1)[0].numpy(), 1 - v8 / 255, atol=1e-6)
    # aligned's 8-bit reading of the 16-bit file gives the 8-bit file's numbers
    assert np.array_equal(np.asarray(open_eight_bit(tmp_path / "z16.tif")), 255 - v8)


# W3 --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", [200, 40000])
def test_16_bit_netpbm_is_16_bit_whatever_its_values(tmp_path: Path, value: int) -> None:
    path = tmp_path / "frame.ppm"
    path.write_bytes(b"P5\n6 4\n65535\n" + np.full((4, 6), value).astype(">u2").tobytes())
    pixels = read_pixels(path, 1)
    assert bits_of(pixels) == 16 and pixels.unique().tolist() == [value]
    # the 8-bit converter (aligned, the tools) rounds it as 16-bit too: 200 -> 1, not 200
    assert np.unique(np.asarray(to_mode(Image.open(path), "L"))).tolist() == [round(value * 255 / 65535)]


# W4 --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("colour_type,channels", [(2, 3), (6, 4)])
def test_16_bit_colour_png_keeps_16_bits_and_aligned_rounds_it(tmp_path: Path, colour_type: int,
                                                               channels: int) -> None:
    samples = RNG.integers(0, 65536, (10, 16, channels)).astype(np.uint16)
    if channels == 4:
        samples[..., 3] = 65535       # opaque: the colour is the oracle as it is
    _png16(tmp_path / "x.png", samples, colour_type)
    pixels = read_pixels(tmp_path / "x.png")
    assert pixels.dtype == WIDE and np.array_equal(pixels.permute(1, 2, 0).numpy(), samples[..., :3])
    assert native_channels(tmp_path / "x.png") == 3
    rounded = np.rint(samples[..., :3].astype(np.float64) * 255 / 65535)
    assert np.array_equal(np.asarray(open_eight_bit(tmp_path / "x.png").convert("RGB")), rounded)


def test_16_bit_gray_alpha_png_is_gray_composited_at_16_bits(tmp_path: Path) -> None:
    """Pillow opens it as RGBA with 8-bit samples (the high bytes); it declares gray + alpha at
    16 bits, so it reads as one 16-bit channel composited onto white at 16 bits, as a 16-bit
    gray+alpha TIFF does, and as an 8-bit gray+alpha PNG gives one gray channel."""
    samples = RNG.integers(0, 65536, (10, 16, 2)).astype(np.uint16)
    samples[0, :4, 1] = [0, 65535, 1, 32768]    # transparent, opaque and in between
    _png16(tmp_path / "la.png", samples, 4)
    gray, alpha = samples[..., 0].astype(np.float64), samples[..., 1].astype(np.float64)
    oracle = np.rint(gray * alpha / 65535 + (65535 - alpha))   # straight alpha over white, by hand
    assert channel_layout(tmp_path / "la.png").count == native_channels(tmp_path / "la.png") == 1
    pixels = read_pixels(tmp_path / "la.png")
    assert pixels.dtype == WIDE and pixels.shape == (1, 10, 16)
    assert np.array_equal(pixels[0].numpy(), oracle)
    assert np.array_equal(read_pixels(tmp_path / "la.png", 3).numpy(), np.broadcast_to(oracle, (3, 10, 16)))
    # aligned and the tools: the same picture rounded to 8 bits, still gray
    eight = open_eight_bit(tmp_path / "la.png")
    assert eight.mode == "L" and np.array_equal(np.asarray(eight), np.rint(oracle * 255 / 65535))
    # Pillow's own reading is what this replaces: colour, from the high bytes only
    with Image.open(tmp_path / "la.png") as img:
        assert img.mode == "RGBA"


def test_aligned_reads_a_16_bit_colour_png_rounded(tmp_path: Path) -> None:
    samples = RNG.integers(0, 65536, (8, 16, 3)).astype(np.uint16)
    (tmp_path / "train").mkdir()
    _png16(tmp_path / "train" / "x.png", samples, 2)
    item = create_dataset("aligned", DataConfig(dataroot=tmp_path, preprocess="none", no_flip=True,
                                                size_divisor=4))[0]
    got = np.rint((item["A"].numpy() + 1) / 2 * 255).transpose(1, 2, 0)
    assert np.array_equal(got, np.rint(samples[:, :8].astype(np.float64) * 255 / 65535))


# U1 --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype,shape,count", [(np.float64, (6, 8), 1), (np.float16, (6, 8), 1),
                                               (np.float32, (6, 8, 3), 3)])
def test_float_tiffs_have_their_channel_count_from_tifffile(tmp_path: Path, dtype, shape, count) -> None:
    values = RNG.random(shape).astype(dtype)
    tifffile.imwrite(tmp_path / "f.tif", values, photometric="rgb" if count == 3 else "minisblack")
    assert native_channels(tmp_path / "f.tif") == count
    pixels = read_pixels(tmp_path / "f.tif")
    np.testing.assert_allclose(np.moveaxis(pixels.numpy(), 0, -1).reshape(shape), values.astype(np.float32))


def test_paired_reads_float_rgb_tiffs(tmp_path: Path) -> None:
    values = RNG.random((8, 12, 3)).astype(np.float32)
    for side in "AB":
        (tmp_path / side / "train").mkdir(parents=True)
        tifffile.imwrite(tmp_path / side / "train" / "x.tif", values, photometric="rgb")
    item = create_dataset("paired", DataConfig(dataroot=tmp_path, preprocess="none", no_flip=True))[0]
    np.testing.assert_allclose((item["B"].numpy() + 1) / 2, np.moveaxis(values, -1, 0), atol=1e-6)


# U2 --------------------------------------------------------------------------------------------

def test_signed_16_bit_tiff_is_refused_as_signed_16_bit(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "dem.tif", RNG.integers(-1000, 3000, (6, 8)).astype(np.int16))
    for read in (read_pixels, native_channels, open_eight_bit):
        with pytest.raises(DataError) as err:
            read(tmp_path / "dem.tif")
        assert str(err.value).startswith(f"{tmp_path / 'dem.tif'}: signed 16-bit integer samples are not supported")
        assert "32-bit" not in str(err.value) and "\n" not in str(err.value)


# U3 --------------------------------------------------------------------------------------------

def test_16_bit_rgba_tiff_is_composited_on_white_at_16_bits(tmp_path: Path) -> None:
    rgba = RNG.integers(0, 65536, (6, 8, 4)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "rgba.tif", rgba, photometric="rgb", extrasamples=[2])
    c, a = rgba[..., :3].astype(np.float64), rgba[..., 3:].astype(np.float64)
    white = np.rint(c * a / 65535 + 65535 - a)                    # straight alpha over white
    assert np.array_equal(read_pixels(tmp_path / "rgba.tif", 3).permute(1, 2, 0).numpy(), white)
    luma = np.rint((white[..., 0] * 299 + white[..., 1] * 587 + white[..., 2] * 114) / 1000)
    assert np.array_equal(read_pixels(tmp_path / "rgba.tif", 1)[0].numpy(), luma)
    assert np.array_equal(read_pixels(tmp_path / "rgba.tif", 4).permute(1, 2, 0).numpy(), rgba)   # kept
    assert channel_layout(tmp_path / "rgba.tif").gives(3) and channel_layout(tmp_path / "rgba.tif").gives(1)
    with pytest.raises(DataError, match=r"rgba.tif: has an alpha channel .* --input_nc is 2: --input_nc 1 or 3 "
                                        r"composites it onto white, --input_nc 4 keeps it"):
        read_pixels(tmp_path / "rgba.tif", 2)


def test_8_bit_gray_alpha_tiff_reads_as_the_same_png(tmp_path: Path) -> None:
    la = RNG.integers(0, 256, (6, 8, 2)).astype(np.uint8)
    tifffile.imwrite(tmp_path / "la.tif", la, photometric="minisblack", extrasamples=[2])
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    for wanted in (1, 3):
        assert np.array_equal(read_pixels(tmp_path / "la.tif", wanted), read_pixels(tmp_path / "la.png", wanted))


def test_paired_composites_16_bit_rgba(tmp_path: Path) -> None:
    rgba = RNG.integers(0, 65536, (8, 8, 4)).astype(np.uint16)
    rgba[..., 3] = 0
    for side in "AB":
        (tmp_path / side / "train").mkdir(parents=True)
        tifffile.imwrite(tmp_path / side / "train" / "x.tif", rgba, photometric="rgb", extrasamples=[2])
    item = create_dataset("paired", DataConfig(dataroot=tmp_path, preprocess="none", no_flip=True))[0]
    assert item["A"].shape == (3, 8, 8) and float(item["A"].min()) == 1.0   # fully transparent: white
