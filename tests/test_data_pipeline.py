"""Datasets and preprocessing on small synthetic images: sizes, alignment, modes, channels."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from data import DATASETS, PREPROCESS_MODES, DataConfig, create_dataset
from data.image_io import load_tensor
from data.transforms import SampleKey, output_size, valid_size

STEP = 4  # gradient step per pixel: a one-pixel shift changes a value by 4/127.5


def gradient(height: int, width: int) -> np.ndarray:
    """R encodes x and G encodes y, so a crop's offset and a flip can be read off the pixels."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * STEP, y * STEP, np.full_like(x, 60)], axis=-1).astype(np.uint8)


def write_pair(path: Path, height: int = 40, width: int = 48) -> np.ndarray:
    """An aligned A|B file with B = 255 - A; returns A."""
    a = gradient(height, width)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate([a, 255 - a], axis=1)).save(path)
    return a


@pytest.fixture
def pairs(tmp_path: Path) -> Path:
    for i in range(3):
        write_pair(tmp_path / "train" / f"{i}.png")
    return tmp_path


def cfg(root: Path, **kw) -> DataConfig:
    defaults = dict(load_size=48, crop_size=32, size_divisor=4)
    defaults.update(kw)
    return DataConfig(root, **defaults)


@pytest.mark.parametrize("preprocess,expected", [
    ("resize_and_crop", (32, 32)),
    ("crop", (32, 32)),
    ("scale_width", (40, 48)),            # width 48 -> load 48; height 40 stays a multiple of 4
    ("scale_width_and_crop", (32, 32)),
    ("none", (40, 48)),
    ("pad", (40, 48)),                    # already multiples of 4: nothing to pad
])
def test_each_preprocess_mode_gives_its_size(pairs: Path, preprocess: str, expected: tuple) -> None:
    ds = create_dataset("aligned", cfg(pairs, preprocess=preprocess))
    item = ds[0]
    assert tuple(item["A"].shape) == (3, *expected) == tuple(item["B"].shape)
    assert item["A"].dtype == torch.float32
    assert -1.0 <= item["A"].min() and item["A"].max() <= 1.0


def test_all_registered_preprocess_modes_are_covered() -> None:
    assert set(PREPROCESS_MODES.names()) == {"resize_and_crop", "crop", "scale_width",
                                             "scale_width_and_crop", "none", "pad"}
    assert all(entry.help for entry in PREPROCESS_MODES)
    assert all(entry.help for entry in DATASETS)


def test_sizes_are_made_valid_for_the_generator(tmp_path: Path) -> None:
    write_pair(tmp_path / "train" / "odd.png", height=37, width=50)
    none = create_dataset("aligned", cfg(tmp_path, preprocess="none", size_divisor=8))[0]
    assert tuple(none["A"].shape[1:]) == (40, 48)      # 37 -> 40, 50 -> 48: nearest multiples of 8
    scaled = create_dataset("aligned", cfg(tmp_path, preprocess="scale_width", load_size=30, crop_size=16,
                                           size_divisor=8))[0]
    assert tuple(scaled["A"].shape[1:]) == (24, 32)    # width 30 -> 32, height int(37*30/50) = 22 -> 24
    assert valid_size(3, 16) == 16 and valid_size(24, 16) == 32 and valid_size(23, 16) == 16
    assert output_size(cfg(tmp_path, preprocess="none", size_divisor=8), 37, 50) == (40, 48)


def test_scale_width_and_crop_keeps_wide_images_croppable(tmp_path: Path) -> None:
    write_pair(tmp_path / "train" / "wide.png", height=8, width=64)
    item = create_dataset("aligned", cfg(tmp_path, preprocess="scale_width_and_crop"))[0]
    assert tuple(item["A"].shape[1:]) == (32, 32)


def _pixels(t: torch.Tensor) -> torch.Tensor:
    return ((t + 1) * 127.5).round()


@pytest.mark.parametrize("preprocess", ["crop", "resize_and_crop", "scale_width_and_crop"])
def test_a_and_b_stay_aligned_through_crop_and_flip(pairs: Path, preprocess: str) -> None:
    ds = create_dataset("aligned", cfg(pairs, preprocess=preprocess, load_size=44))
    flipped = 0
    for seed in range(12):
        item = ds[SampleKey(0, seed)]
        a, b = _pixels(item["A"]), _pixels(item["B"])
        # B was 255 - A pixel for pixel; resampling may round the two differently by one level.
        tolerance = 0 if preprocess == "crop" else 1
        assert (a + b - 255).abs().max() <= tolerance
        flipped += int(a[0, 0, 0] > a[0, 0, -1])    # R (x) decreasing along x: flipped
    assert 0 < flipped < 12   # both outcomes of the random flip were seen


def test_crop_takes_a_real_window_at_random_offsets(pairs: Path) -> None:
    full = torch.from_numpy(gradient(40, 48)).permute(2, 0, 1).float()
    ds = create_dataset("aligned", cfg(pairs, preprocess="crop", no_flip=True))
    offsets = set()
    for seed in range(8):
        a = _pixels(ds[SampleKey(0, seed)]["A"])
        x0, y0 = int(a[0, 0, 0]) // STEP, int(a[1, 0, 0]) // STEP
        assert torch.equal(a, full[:, y0:y0 + 32, x0:x0 + 32])
        offsets.add((x0, y0))
    assert len(offsets) > 1


def test_no_flip_and_same_seed_give_the_same_item(pairs: Path) -> None:
    ds = create_dataset("aligned", cfg(pairs, no_flip=True, preprocess="none"))
    a = _pixels(ds[SampleKey(1, 5)]["A"])
    assert torch.equal(a, torch.from_numpy(gradient(40, 48)).permute(2, 0, 1).float())
    ds2 = create_dataset("aligned", cfg(pairs))
    assert torch.equal(ds2[SampleKey(2, 9)]["A"], ds2[SampleKey(2, 9)]["A"])
    assert torch.equal(ds2[1]["B"], ds2[1]["B"])   # a bare index is deterministic too


def test_augmentation_leaves_the_global_rng_alone(pairs: Path) -> None:
    ds = create_dataset("aligned", cfg(pairs))
    torch.manual_seed(3)
    expected = torch.rand(4)
    torch.manual_seed(3)
    ds[SampleKey(0, 1)]
    assert torch.equal(torch.rand(4), expected)


def test_direction_btoa_swaps_a_and_b(pairs: Path) -> None:
    forward = create_dataset("aligned", cfg(pairs))[SampleKey(0, 7)]
    backward = create_dataset("aligned", cfg(pairs, direction="BtoA"))[SampleKey(0, 7)]
    assert torch.equal(forward["A"], backward["B"]) and torch.equal(forward["B"], backward["A"])
    assert not torch.equal(forward["A"], backward["A"])


def test_grayscale_channels(pairs: Path) -> None:
    item = create_dataset("aligned", cfg(pairs, input_nc=1, preprocess="none", no_flip=True))[0]
    assert item["A"].shape[0] == 1 and item["B"].shape[0] == 3
    expected = np.asarray(Image.fromarray(gradient(40, 48)).convert("L"), dtype=np.float32)
    assert torch.equal(_pixels(item["A"])[0], torch.from_numpy(expected))
    item = create_dataset("aligned", cfg(pairs, input_nc=1, output_nc=1))[0]
    assert item["A"].shape[0] == 1 and item["B"].shape[0] == 1


def test_max_dataset_size_keeps_the_first_files_in_order(pairs: Path) -> None:
    ds = create_dataset("aligned", cfg(pairs, max_dataset_size=2))
    assert [Path(p).name for p in ds.paths] == ["0.png", "1.png"]
    assert ds[1]["A_paths"].endswith("1.png") and ds[1]["B_paths"] == ds[1]["A_paths"]


def test_hidden_files_and_folders_are_ignored(pairs: Path) -> None:
    (pairs / "train" / ".DS_Store").write_bytes(b"\x00junk")
    write_pair(pairs / "train" / ".hidden" / "x.png")
    write_pair(pairs / "train" / "sub" / "3.PNG")   # nested folders and upper-case extensions count
    ds = create_dataset("aligned", cfg(pairs))
    assert [Path(p).name for p in ds.paths] == ["0.png", "1.png", "2.png", "3.PNG"]


def test_single_dataset_reads_a_folder_or_one_file(tmp_path: Path) -> None:
    for i in range(2):
        Image.fromarray(gradient(36, 44)).save(tmp_path / f"{i}.jpg")
    ds = create_dataset("single", cfg(tmp_path, phase="test", preprocess="none", no_flip=True))
    assert len(ds) == 2
    item = ds[0]
    assert set(item) == {"A", "A_paths", "A_size", "A_bits"} and tuple(item["A"].shape) == (3, 36, 44)
    one = create_dataset("single", cfg(tmp_path / "1.jpg", input_nc=1, preprocess="none"))
    assert len(one) == 1 and one[0]["A"].shape[0] == 1


def test_colorization_gives_l_and_ab(tmp_path: Path) -> None:
    rgb = np.zeros((32, 32, 3), np.uint8)
    rgb[..., 0] = 200
    rgb[:, 16:, 2] = 180
    Image.fromarray(rgb).save(tmp_path / "photo.png")
    Image.fromarray(rgb[..., 0]).save(tmp_path / "gray.png")   # grayscale photos are fine
    ds = create_dataset("colorization", cfg(tmp_path, input_nc=1, output_nc=2, preprocess="none",
                                            no_flip=True))
    item = ds[1]
    assert tuple(item["A"].shape) == (1, 32, 32) and tuple(item["B"].shape) == (2, 32, 32)
    from data.color import lab_tensors_to_rgb
    back = lab_tensors_to_rgb(item["A"], item["B"])
    torch.testing.assert_close(_pixels(back), torch.from_numpy(rgb).permute(2, 0, 1).float(),
                               atol=1, rtol=0)
    gray = ds[0]
    assert gray["B"].abs().max() < 1e-3
    with pytest.raises(ValueError, match="--input_nc 3 --output_nc 3"):
        create_dataset("colorization", cfg(tmp_path))


def _write_mode(path: Path, mode: str) -> tuple[int, int, int]:
    """Write a 16x16 image stored in ``mode``; return the RGB it should decode to."""
    if mode == "RGBA":
        img = Image.new("RGBA", (16, 16), (10, 20, 30, 0))      # fully transparent -> white
        expected = (255, 255, 255)
    elif mode == "LA":
        img = Image.new("LA", (16, 16), (100, 255))
        expected = (100, 100, 100)
    elif mode == "P":
        img = Image.new("RGB", (16, 16), (0, 128, 255)).convert("P", palette=Image.Palette.ADAPTIVE)
        expected = (0, 128, 255)
    elif mode == "P+transparency":
        img = Image.new("P", (16, 16), 0)
        img.putpalette([9, 9, 9] * 256)
        img.info["transparency"] = 0
        expected = (255, 255, 255)
    elif mode == "I;16":
        img = Image.fromarray(np.full((16, 16), 32896, np.uint16))   # 32896 / 257 = 128
        expected = (128, 128, 128)
    elif mode == "F":
        img = Image.fromarray(np.full((16, 16), 0.5, np.float32))
        expected = (128, 128, 128)
    elif mode == "CMYK":
        img = Image.new("CMYK", (16, 16), (0, 255, 255, 0))          # pure red ink mix
        expected = (255, 0, 0)
    elif mode == "L":
        img = Image.new("L", (16, 16), 77)
        expected = (77, 77, 77)
    elif mode == "1":
        img = Image.new("1", (16, 16), 1)
        expected = (255, 255, 255)
    else:
        raise AssertionError(mode)
    suffix = ".tif" if mode in ("F", "CMYK") else ".png"
    path = path.with_suffix(suffix)
    img.save(path, transparency=0) if mode == "P+transparency" else img.save(path)
    return expected


# 32-bit integer files ("I") are refused: tests/test_data_float_samples.py.
@pytest.mark.parametrize("mode", ["RGBA", "LA", "P", "P+transparency", "I;16", "F", "CMYK", "L", "1"])
def test_every_stored_mode_is_converted(tmp_path: Path, mode: str) -> None:
    expected = _write_mode(tmp_path / "img", mode)
    path = next(tmp_path.iterdir())
    rgb = load_tensor(path, "RGB")
    assert rgb.dtype == torch.uint8 and tuple(rgb.shape) == (3, 16, 16)
    assert tuple(rgb[:, 5, 5].tolist()) == pytest.approx(expected, abs=1)
    gray = load_tensor(path, "L")
    assert tuple(gray.shape) == (1, 16, 16)
