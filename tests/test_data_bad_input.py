"""Bad dataset input: one-line DataError naming the file, or a warning and a skip."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data import DataConfig, DataError, create_dataset
from data.loader import create_dataloader, set_loader_epoch


def write_pair(path: Path, height: int = 32, width: int = 64) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(path)


def write_truncated(path: Path) -> None:
    write_pair(path, 64, 128)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def cfg(root: Path, **kw) -> DataConfig:
    return DataConfig(root, **{"preprocess": "crop", "load_size": 32, "crop_size": 32, **kw})


def assert_one_line_naming(err: pytest.ExceptionInfo, name: str) -> None:
    message = str(err.value)
    assert name in message, message
    assert "\n" not in message and "Traceback" not in message


@pytest.fixture
def root(tmp_path: Path) -> Path:
    write_pair(tmp_path / "train" / "good1.png")
    write_pair(tmp_path / "train" / "good2.png")
    return tmp_path


def test_missing_dataroot(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        create_dataset("aligned", cfg(tmp_path / "nowhere"))
    assert_one_line_naming(err, "nowhere")
    assert isinstance(err.value, ValueError)


def test_missing_and_empty_phase_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        create_dataset("aligned", cfg(tmp_path, phase="val"))
    assert_one_line_naming(err, str(tmp_path / "val"))
    (tmp_path / "val").mkdir()
    (tmp_path / "val" / ".hidden.png").write_bytes(b"")
    with pytest.raises(DataError, match="no usable images") as err:
        create_dataset("aligned", cfg(tmp_path, phase="val"))
    assert_one_line_naming(err, str(tmp_path / "val"))


BAD_FILES = {
    "fake.jpg": lambda p: p.write_text("not an image either"),
    "empty.png": lambda p: p.write_bytes(b""),
    "odd.png": lambda p: write_pair(p, 32, 65),
    "small.png": lambda p: write_pair(p, 16, 64),   # 32x16 halves, crop 32
}


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_each_bad_file_is_named_when_the_dataset_is_built(root: Path, name: str) -> None:
    BAD_FILES[name](root / "train" / name)
    with pytest.raises(DataError) as err:
        create_dataset("aligned", cfg(root))
    assert_one_line_naming(err, name)


def test_small_image_is_fine_when_it_is_resized_first(root: Path) -> None:
    BAD_FILES["small.png"](root / "train" / "small.png")
    ds = create_dataset("aligned", cfg(root, preprocess="resize_and_crop"))
    assert len(ds) == 3 and tuple(ds[2]["A"].shape) == (3, 32, 32)


def test_truncated_image_is_named_on_load_or_at_build_with_cache(root: Path) -> None:
    write_truncated(root / "train" / "trunc.png")
    ds = create_dataset("aligned", cfg(root))   # the header alone looks fine
    with pytest.raises(DataError) as err:
        ds[2]
    assert_one_line_naming(err, "trunc.png")
    with pytest.raises(DataError) as err:
        create_dataset("aligned", cfg(root, cache=True))
    assert_one_line_naming(err, "trunc.png")


def test_skip_bad_images_warns_once_per_file_and_keeps_the_good(root: Path, caplog) -> None:
    for name, make in BAD_FILES.items():
        make(root / "train" / name)
    write_truncated(root / "train" / "trunc.png")
    with caplog.at_level(logging.WARNING):
        ds = create_dataset("aligned", cfg(root, skip_bad_images=True))
    assert [p.name for p in ds.paths] == ["good1.png", "good2.png"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == len(BAD_FILES) + 1
    for name in [*BAD_FILES, "trunc.png"]:
        assert sum(name in w for w in warnings) == 1, name
    # Every remaining sample loads.
    assert all(ds[i]["A"].shape == (3, 32, 32) for i in range(len(ds)))


def test_skip_bad_images_with_nothing_left(tmp_path: Path) -> None:
    BAD_FILES["empty.png"](tmp_path / "empty.png")
    with pytest.raises(DataError, match="no usable images"):
        create_dataset("single", cfg(tmp_path, skip_bad_images=True))


def test_max_dataset_size_counts_only_good_images(root: Path) -> None:
    BAD_FILES["empty.png"](root / "train" / "a_empty.png")
    ds = create_dataset("aligned", cfg(root, skip_bad_images=True, max_dataset_size=2))
    assert [p.name for p in ds.paths] == ["good1.png", "good2.png"]


@pytest.mark.parametrize("num_workers", [0, 1])
def test_a_file_that_breaks_mid_epoch_gives_no_worker_traceback(root: Path, num_workers: int) -> None:
    ds = create_dataset("aligned", cfg(root))
    write_truncated(root / "train" / "good2.png")   # goes bad after the start-up scan
    loader = create_dataloader(ds, batch_size=1, shuffle=False, num_workers=num_workers, seed=0)
    set_loader_epoch(loader, 0)
    with pytest.raises(DataError) as err:
        list(loader)
    assert_one_line_naming(err, "good2.png")


def test_bad_options_are_reported() -> None:
    with pytest.raises(ValueError, match="--direction"):
        DataConfig("x", direction="sideways")
    with pytest.raises(ValueError, match="--preprocess"):
        DataConfig("x", preprocess="zoom")
    with pytest.raises(ValueError, match="--load_size 100 is smaller than --crop_size 256"):
        DataConfig("x", load_size=100)
    with pytest.raises(ValueError, match="--crop_size 250 is not a multiple of 256"):
        DataConfig("x", crop_size=250, size_divisor=256)
