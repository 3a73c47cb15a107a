"""--dataset_mode paired: both folder layouts, pairing by name, stacked inputs, and one line per
bad input (checked at start-up, through train.py's error path)."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

import train as train_driver
from data import DataConfig, DataError, create_dataset


def save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".tif":
        extra = {"photometric": "minisblack", "planarconfig": "contig"} if array.ndim == 3 else {}
        tifffile.imwrite(path, array, **extra)
    else:
        Image.fromarray(array).save(path)


def cfg(root: Path, **kw) -> DataConfig:
    values = dict(preprocess="pad", size_divisor=4, no_flip=True, input_nc=1, output_nc=1)
    values.update(kw)
    return DataConfig(root, **values)


def gray(value: int, h: int = 6, w: int = 9, dtype=np.uint8) -> np.ndarray:
    return np.full((h, w), value, dtype=dtype)


def unit(pixels: torch.Tensor, top: float) -> torch.Tensor:
    return pixels.float() / top * 2 - 1


@pytest.mark.parametrize("layout", ["A/train", "train_A"])
def test_both_layouts_pair_files_by_name_in_sorted_order(tmp_path: Path, layout: str) -> None:
    def folder(side: str) -> Path:
        return tmp_path / layout.replace("A", side)
    for i, name in enumerate(["b", "a", "sub/c"]):
        save(folder("A") / f"{name}.png", gray(10 * i))
        save(folder("B") / f"{name}.tif", gray(100 + i))        # other extension, same name
    ds = create_dataset("paired", cfg(tmp_path))
    names = [Path(ds[i]["A_paths"]).relative_to(folder("A")).as_posix() for i in range(len(ds))]
    assert names == ["a.png", "b.png", "sub/c.png"]
    item = ds[1]   # b: A 0, B 100
    assert Path(item["B_paths"]).name == "b.tif"
    assert torch.equal(item["A"][:, 1:7, 1:10], unit(torch.zeros(1, 6, 9), 255))
    assert torch.equal(item["B"][:, 1:7, 1:10], unit(torch.full((1, 6, 9), 100), 255))
    assert tuple(item["A"].shape) == (1, 8, 12) and item["A_size"].tolist() == [6, 9]   # padded to 4s


def test_btoa_swaps_the_folders(tmp_path: Path) -> None:
    save(tmp_path / "A/train/x.png", gray(0))
    save(tmp_path / "B/train/x.png", gray(255))
    item = create_dataset("paired", cfg(tmp_path, direction="BtoA"))[0]
    assert item["A"].min() == 1 and item["B"].max() == -1


def test_numbered_folders_stack_into_channels(tmp_path: Path) -> None:
    rgb = np.arange(6 * 9 * 3, dtype=np.uint8).reshape(6, 9, 3)
    save(tmp_path / "train_A1/x.png", gray(7))                       # 1 channel, 8-bit
    save(tmp_path / "train_A2/x.png", rgb)                           # 3 channels, 8-bit
    save(tmp_path / "train_A3/x.tif", gray(40000, dtype=np.uint16))  # 1 channel, 16-bit
    save(tmp_path / "train_B/x.png", gray(1))
    ds = create_dataset("paired", cfg(tmp_path, input_nc=5, preprocess="crop", crop_size=4))
    a = ds.store.load(0)[0]
    # A 16-bit part widens the 8-bit ones (v -> 257 v): the same fractions of full scale.
    expected = torch.cat([torch.full((1, 6, 9), 7 * 257), torch.from_numpy(rgb).permute(2, 0, 1).int() * 257,
                          torch.full((1, 6, 9), 40000)])
    assert torch.equal(a, expected.to(a.dtype)) and ds[0]["A_bits"] == 16 and ds[0]["B_bits"] == 8
    assert ds[0]["A"].shape == (5, 4, 4)


def test_sixteen_bit_values_arrive_exactly(tmp_path: Path) -> None:
    values = np.arange(0, 65536, 7, dtype=np.uint16)[:6 * 9].reshape(6, 9)
    save(tmp_path / "A/train/x.tif", values)
    save(tmp_path / "B/train/x.png", values)      # Pillow writes a 16-bit gray PNG (I;16)
    item = create_dataset("paired", cfg(tmp_path))[0]
    a, b = (item[k][0, 1:7, 1:10] for k in ("A", "B"))   # 6x9 padded to 8x12: 1 row and 1 column before
    oracle = torch.from_numpy(values.astype(np.float32)) / 65535 * 2 - 1
    assert torch.equal(a, oracle) and torch.equal(b, oracle) and item["A_bits"] == item["B_bits"] == 16


def bad(tmp_path: Path, case: str) -> dict:
    """Write the case's files; return the options it needs."""
    if case == "unmatched":
        for name in ("x", "y", "z1", "z2", "z3", "z4"):
            save(tmp_path / "A/train" / f"{name}.png", gray(1))
        save(tmp_path / "B/train/x.png", gray(1))
        return {}
    if case == "sizes":
        save(tmp_path / "A/train/x.png", gray(1))
        save(tmp_path / "B/train/x.png", gray(1, h=7))
        return {}
    if case == "channels":
        save(tmp_path / "A/train/x.tif", np.zeros((6, 9, 5), np.uint16))
        save(tmp_path / "B/train/x.png", gray(1))
        return {"--input_nc": "3"}
    if case == "stack":
        save(tmp_path / "A1/train/x.png", gray(1))
        save(tmp_path / "A2/train/x.png", gray(1))
        save(tmp_path / "B/train/x.png", gray(1))
        return {"--input_nc": "3"}
    if case == "no_B":
        save(tmp_path / "A/train/x.png", gray(1))
        return {}
    raise AssertionError(case)


EXPECTED = {
    "unmatched": r"A/train: 5 file\(s\) without a partner of the same name in .*B/train: y.png, z1.png, z2.png and 2 more",
    "sizes": r"pairs of different sizes .*B/train/x.png is 9x7, x.png 9x6",
    "channels": r"A/train: channel counts that cannot give --input_nc 3: x.tif has 5",
    "stack": r"channels that do not add up to --input_nc 3: x.png \+ x.png stack to 2",
    "no_B": r"no B folder for phase 'train'",
}


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_bad_input_is_one_line_from_the_driver(tmp_path: Path, case: str, capsys: pytest.CaptureFixture) -> None:
    extra = bad(tmp_path / "data", case)
    options = {"--input_nc": "1", "--output_nc": "1", **extra}
    argv = ["--dataroot", str(tmp_path / "data"), "--checkpoints_dir", str(tmp_path / "ck"), "--dataset_mode", "paired",
            "--preprocess", "pad", "--netG", "resnet_6blocks", "--ngf", "4", "--ndf", "4", "--num_threads", "0",
            "--display_id", "0", "--gpu_ids", "-1", "--max_steps", "1",
            *[x for kv in options.items() for x in kv]]
    assert train_driver.main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("train.py: error")
    assert re.search(EXPECTED[case], err), err
    assert not (tmp_path / "ck").exists() or not any((tmp_path / "ck").rglob("*.pth"))


def test_aligned_data_keeps_working_beside_paired(tmp_path: Path) -> None:
    save(tmp_path / "train/x.png", np.zeros((8, 16), np.uint8))
    item = create_dataset("aligned", DataConfig(tmp_path, input_nc=1, output_nc=1, preprocess="pad", size_divisor=4))
    assert tuple(item[0]["A"].shape) == (1, 8, 8)
    with pytest.raises(DataError):
        create_dataset("paired", cfg(tmp_path))
