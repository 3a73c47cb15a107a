"""Files that are no images, or images that cannot be read, in every dataset mode.

Stray files without an image extension (Windows' Thumbs.db and desktop.ini, a README.txt) are
left out of every listing, as paired mode and translate.py always did. A file with an image
extension that cannot be read (not an image, empty, truncated, a damaged TIFF) stops the run
with one line naming it, or with --skip_bad_images is left out with a warning naming it. The
oracle is the set of file names the test writes.
"""
from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from data import DataConfig, DataError, create_dataset
from datasets.make_shards import make_shards
from data.shard_format import ShardLimits

STRAYS = {"Thumbs.db": b"\xd0\xcf\x11\xe0junk", "desktop.ini": b"[.ShellClassInfo]\n", "README.txt": b"notes\n"}
# name -> how a file with an image extension is made unreadable
BAD = {
    "not_an_image": lambda p: p.write_bytes(b"hello"),
    "empty": lambda p: p.write_bytes(b""),
    "truncated": lambda p: p.write_bytes(p.read_bytes()[:-60]),   # the header reads, the pixels do not
}


def write_png(path: Path, width: int, height: int, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


def write_strays(folder: Path) -> None:
    for name, data in STRAYS.items():
        (folder / name).write_bytes(data)


def paired_root(root: Path, names: list[str]) -> Path:
    for i, name in enumerate(names):
        for side in "AB":
            write_png(root / side / "train" / f"{name}.png", 16, 16, seed=2 * i + (side == "B"))
    return root


def single_root(root: Path, names: list[str], width: int = 32) -> Path:
    for i, name in enumerate(names):
        write_png(root / "train" / f"{name}.png", width, 16, seed=i)
    return root


MODES = {   # mode -> (make a root with these names, DataConfig fields)
    "aligned": (single_root, {}),
    "single": (single_root, {}),
    "colorization": (single_root, {"input_nc": 1, "output_nc": 2}),
    "paired": (paired_root, {}),
}


def image_folders(root: Path) -> list[Path]:
    return sorted({p.parent for p in root.rglob("*.png")})


@pytest.mark.parametrize("mode", MODES)
def test_stray_non_image_files_are_left_out_in_every_mode(tmp_path: Path, mode: str) -> None:
    make, fields = MODES[mode]
    root = make(tmp_path / "data", ["a", "b"])
    for folder in image_folders(root):
        write_strays(folder)
    dataset = create_dataset(mode, DataConfig(root, preprocess="none", **fields))
    assert sorted(Path(p).name for p in dataset.paths) == ["a.png", "b.png"]
    indexes = make_shards(root, mode, tmp_path / "shards", ["train"], ShardLimits(10, 2**30))
    assert indexes["train"]["pix2pix"]["names"] == [str(Path(dataset.paths[0]).relative_to(root)),
                                                    str(Path(dataset.paths[1]).relative_to(root))]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("bad", BAD)
def test_an_unreadable_file_is_one_line_or_skipped_with_a_warning(tmp_path: Path, mode: str, bad: str,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    make, fields = MODES[mode]
    root = make(tmp_path / "data", ["a", "b", "c"])
    broken = image_folders(root)[0] / "b.png"
    BAD[bad](broken)
    with pytest.raises(DataError) as err:
        dataset = create_dataset(mode, DataConfig(root, preprocess="none", **fields))
        [dataset[i] for i in range(len(dataset))]   # a truncated file shows when it is decoded
    assert str(err.value).startswith(f"{broken}: ") and "\n" not in str(err.value)
    with caplog.at_level(logging.WARNING):
        dataset = create_dataset(mode, DataConfig(root, preprocess="none", skip_bad_images=True, **fields))
    assert sorted(Path(p).name for p in dataset.paths) == ["a.png", "c.png"]
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1 and str(broken) in warned[0]
    assert all(dataset[i]["A"].shape[-2] == 16 for i in range(len(dataset)))   # every kept sample loads


def test_paired_skips_a_pair_whose_b_file_is_bad(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = paired_root(tmp_path / "data", ["a", "b"])
    (root / "B" / "train" / "a.png").write_bytes(b"")
    with caplog.at_level(logging.WARNING):
        dataset = create_dataset("paired", DataConfig(root, preprocess="none", skip_bad_images=True))
    assert [Path(p).name for p in dataset.paths] == ["b.png"]
    assert f"{root / 'B' / 'train' / 'a.png'}: empty" in caplog.text


def damaged_tiff(path: Path) -> None:
    """A TIFF whose first tags hold and the rest is garbage: tifffile logs a line per bad tag,
    Pillow warns, and neither reads it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((16, 32, 3), np.uint8)).save(path, format="TIFF")
    data = bytearray(path.read_bytes())
    start = 8 + 2 + 12 * 6   # the header, the tag count and six good tags
    data[start:] = np.random.default_rng(0).integers(0, 256, len(data) - start, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))


def test_a_damaged_tiff_is_one_line_naming_it_and_nothing_else(tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture,
                                                               capfd: pytest.CaptureFixture[str]) -> None:
    root = single_root(tmp_path / "data", ["a"])
    damaged_tiff(root / "train" / "b.tif")
    shards = tmp_path / "shards"
    make_shards(single_root(tmp_path / "good", ["a"]), "aligned", shards, ["train"], ShardLimits(10, 2**30))
    # The damaged file as a shard member, in place of the good one.
    import tarfile
    tar_path = shards / "train-000000.tar"
    with tarfile.open(tar_path) as tar:
        member = tar.getmembers()[0]
    damaged = (root / "train" / "b.tif").read_bytes()
    # tifffile's own logger only: lowering the root level would let other libraries' debug lines
    # reach stderr through handlers that earlier tests' drivers installed.
    with caplog.at_level(logging.DEBUG, logger="tifffile"), warnings.catch_warnings(record=True) as leaked:
        warnings.simplefilter("always")
        with pytest.raises(DataError) as err:
            dataset = create_dataset("aligned", DataConfig(root, preprocess="none"))
            [dataset[i] for i in range(len(dataset))]
        assert str(err.value).startswith(f"{root / 'train' / 'b.tif'}: cannot ")
        assert "BytesIO" not in str(err.value)
        from data.image_io import ImageBlob, open_image
        with pytest.raises(DataError) as blob_err:
            open_image(ImageBlob(f"{tar_path}:{member.name}", damaged))
        assert str(blob_err.value).startswith(f"{tar_path}:{member.name}: cannot decode image (")
        assert "BytesIO" not in str(blob_err.value)
    assert [str(w.message) for w in leaked] == []
    assert not [r for r in caplog.records if r.name.startswith("tifffile")]
    out, errors = capfd.readouterr()
    assert out == "" and "TiffTag" not in errors and "tifffile" not in errors.lower()


def test_a_missing_phase_names_the_dataroot_first(tmp_path: Path) -> None:
    root = single_root(tmp_path / "data", ["a"])
    with pytest.raises(DataError) as err:
        create_dataset("aligned", DataConfig(root, phase="test"))
    assert str(err.value) == f"{root}: no 'test' folder in --dataroot (expected {root / 'test'}/)"
