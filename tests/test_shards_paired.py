"""Shards of paired folders: 16-bit one-channel TIFF scans of odd sizes, two stacked inputs
(A1, A2 -> B), read with --preprocess pad. The oracle is the folder set itself: the same
samples tensor for tensor, the same size-grouped batches, the same weights after training.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch

import train as train_driver
from data import DataConfig, DataError, create_dataset
from data.loader import create_dataloader, set_loader_epoch
from data.transforms import SampleKey, sample_seed
from datasets.make_shards import main as make_shards_main
from tests.shard_helpers import make_shard_set
from tests.test_faults import assert_same_training, weights

# (height, width): two sizes in one phase, none a multiple of 4.
SIZES = {"train": [(45, 72), (37, 50), (45, 72), (37, 50), (45, 72)], "test": [(45, 72), (37, 50)]}
READ = {"AtoB": {"input_nc": 2, "output_nc": 1}, "BtoA": {"direction": "BtoA", "input_nc": 1, "output_nc": 2},
        "cached": {"input_nc": 2, "output_nc": 1, "cache": True}}


def write_scans(root: Path) -> Path:
    """A1/<phase>, A2/<phase>, B/<phase>: 16-bit one-channel TIFFs; B from A1 and A2."""
    rng = np.random.default_rng(4)
    for phase, sizes in SIZES.items():
        for i, (h, w) in enumerate(sizes):
            a1 = rng.integers(0, 65536, (h, w), dtype=np.uint16)
            a2 = rng.integers(0, 65536, (h, w), dtype=np.uint16)
            for side, image in (("A1", a1), ("A2", a2), ("B", a1 // 2 + a2 // 2)):
                (root / side / phase).mkdir(parents=True, exist_ok=True)
                tifffile.imwrite(root / side / phase / f"scan{i}.tif", image)
    return root


@pytest.fixture(scope="module")
def scans(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the folders, their shard set, 3 samples a shard)."""
    root = write_scans(tmp_path_factory.mktemp("scans"))
    return root, make_shard_set(root, tmp_path_factory.mktemp("scan_shards"), "paired", ("train", "test"))


def cfg(root: Path, phase: str, read: str, **extra) -> DataConfig:
    return DataConfig(root, phase=phase, preprocess="pad", size_divisor=4, **READ[read], **extra)


@pytest.mark.parametrize("read", READ)
def test_shards_of_paired_folders_give_the_folder_samples(scans: tuple[Path, Path], tmp_path: Path,
                                                          read: str) -> None:
    root, shards = scans
    for phase in SIZES:
        folder = create_dataset("paired", cfg(root, phase, read))
        sharded = create_dataset("shards", cfg(shards, phase, read, shard_cache=tmp_path))
        assert type(sharded) is type(folder) and len(sharded) == len(folder) == len(SIZES[phase])
        assert sharded.sample_sizes() == folder.sample_sizes()
        for i in range(len(folder)):
            a, b = (d[SampleKey(i, sample_seed(3, 1, i))] for d in (folder, sharded))
            # The shards keep one name a sample, the stored A1 file's: A1/train/scan0.tif.
            assert Path(b["A_paths"]).parts[-2:] == Path(a["A_paths"]).parts[-2:]
            assert b["A_paths"] == b["B_paths"] == f"A1/{phase}/scan{i}.tif"
            for key in ("A", "B"):
                assert a[key].dtype == b[key].dtype and torch.equal(a[key], b[key]), (i, key)
            assert (a["A_bits"], a["B_bits"]) == (b["A_bits"], b["B_bits"]) == (16, 16)
            assert torch.equal(a["A_size"], b["A_size"])
    stacked = create_dataset("shards", cfg(shards, "train", "AtoB", shard_cache=tmp_path))[0]
    expected = np.stack([tifffile.imread(root / side / "train" / "scan0.tif") for side in ("A1", "A2")])
    # Pad (45, 72) -> (48, 72): one row above, two below; the stored pixels sit in between.
    assert stacked["A"].shape == (2, 48, 72)
    assert torch.equal(stacked["A"][:, 1:46], torch.from_numpy(expected.astype(np.float32)) / 65535 * 2 - 1)


def test_the_index_records_each_sample_size_and_keeps_the_files_unchanged(scans: tuple[Path, Path]) -> None:
    root, shards = scans
    meta = json.loads((shards / "train.json").read_text())["pix2pix"]
    assert meta["format_version"] == 3 and meta["dataset_mode"] == "paired"
    shardlist = json.loads((shards / "train.json").read_text())["shardlist"]
    assert [s["sha256"] for s in shardlist] == \
        [hashlib.sha256((shards / s["url"]).read_bytes()).hexdigest() for s in shardlist]
    assert meta["names"] == [f"A1/train/scan{i}.tif" for i in range(5)]
    assert meta["sizes"] == [list(size) for size in SIZES["train"]]
    sharded = create_dataset("shards", cfg(shards, "train", "AtoB", shard_cache=shards / "cache"))
    members = sharded.store.members(4)
    assert sorted(members) == ["A1", "A2", "B"]
    for field, blob in members.items():
        assert blob.data == (root / field / "train" / "scan4.tif").read_bytes()


def batches(dataset, epoch: int) -> list[dict]:
    loader = create_dataloader(dataset, batch_size=2, shuffle=True, num_workers=0, seed=7)
    set_loader_epoch(loader, epoch)
    return list(loader)


def test_mixed_sizes_batch_by_size_on_shards_as_on_folders(scans: tuple[Path, Path], tmp_path: Path) -> None:
    root, shards = scans
    folder = batches(create_dataset("paired", cfg(root, "train", "AtoB")), 2)
    sharded = batches(create_dataset("shards", cfg(shards, "train", "AtoB", shard_cache=tmp_path)), 2)
    # 3 samples of 48x72 and 2 of 40x52 (padded): batches of 2 + 1 and 2.
    assert sorted(len(b["A_paths"]) for b in sharded) == [1, 2, 2]
    assert len(sharded) == len(folder)
    for a, b in zip(folder, sharded):
        assert [Path(p).name for p in a["A_paths"]] == [Path(p).name for p in b["A_paths"]]
        assert torch.equal(a["A"], b["A"]) and torch.equal(a["B"], b["B"])


def test_an_index_of_format_1_still_reads_without_sizes(scans: tuple[Path, Path], tmp_path: Path) -> None:
    _, shards = scans
    old = tmp_path / "old"
    old.mkdir()
    for tar in shards.glob("train-*.tar"):
        (old / tar.name).symlink_to(tar)
    index = json.loads((shards / "train.json").read_text())
    index["pix2pix"]["format_version"] = 1
    del index["pix2pix"]["sizes"]
    (old / "train.json").write_text(json.dumps(index))
    new = create_dataset("shards", cfg(shards, "train", "AtoB", shard_cache=tmp_path / "c"))
    older = create_dataset("shards", cfg(old, "train", "AtoB", shard_cache=tmp_path / "c"))
    with pytest.raises(DataError, match="a version-1 shard index records no image sizes"):
        older.sample_sizes()   # asked for batches of 2 or more: pad keeps mixed sizes
    assert torch.equal(older[3]["A"], new[3]["A"])
    index["pix2pix"]["format_version"] = 4
    (old / "train.json").write_text(json.dumps(index))
    with pytest.raises(DataError, match=r"train\.json: not a pix2pix shard index this version reads "
                                        r"\(format version 4; it reads 1, 2, 3\)"):
        create_dataset("shards", cfg(old, "train", "AtoB", shard_cache=tmp_path / "c"))


def test_reading_with_channels_the_stack_does_not_give_is_one_line(scans: tuple[Path, Path], tmp_path: Path) -> None:
    _, shards = scans
    sharded = create_dataset("shards", DataConfig(shards, preprocess="pad", input_nc=3, output_nc=1,
                                                  shard_cache=tmp_path))
    with pytest.raises(DataError, match=r"A1\.tif \+ .*A2\.tif: stack to 2 channels, not --input_nc 3$"):
        sharded[0]


def test_make_shards_finds_the_paired_phases(scans: tuple[Path, Path], tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    root, _ = scans
    assert make_shards_main(["--dataroot", str(root), "--dataset_mode", "paired", "--output", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "train: 5 samples in 1 shard" in out and "test: 2 samples in 1 shard" in out


def test_training_on_shards_of_paired_folders_ends_with_the_folder_weights(scans: tuple[Path, Path],
                                                                          tmp_path: Path) -> None:
    root, shards = scans
    common = ["--checkpoints_dir", str(tmp_path), "--preprocess", "pad", "--input_nc", "2", "--output_nc", "1",
              "--netG", "resnet_6blocks", "--ngf", "4", "--ndf", "4", "--batch_size", "2", "--max_steps", "2",
              "--amp", "none", "--display_id", "0", "--no_html", "--gpu_ids", "-1", "--seed", "5"]
    sources = {"folder": ["--dataroot", str(root), "--dataset_mode", "paired", "--num_threads", "0"],
               "shards": ["--dataroot", str(shards), "--dataset_mode", "shards", "--num_threads", "1",
                          "--shard_cache", str(tmp_path / "cache")]}
    for name, extra in sources.items():
        assert train_driver.main([*common, "--name", name, *extra]) == 0
    assert_same_training(weights(tmp_path / "shards" / "latest.pt"), weights(tmp_path / "folder" / "latest.pt"))


def test_many_channel_tiffs_that_pillow_cannot_open_read_from_shards(tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    for i in range(2):
        for side, channels in (("A", 5), ("B", 1)):
            (tmp_path / side / "train").mkdir(parents=True, exist_ok=True)
            tifffile.imwrite(tmp_path / side / "train" / f"{i}.tif",
                             rng.integers(0, 65536, (13, 10, channels), dtype=np.uint16).squeeze(),
                             photometric="minisblack", planarconfig="contig")
    shards = make_shard_set(tmp_path, tmp_path / "shards", "paired")
    read = {"preprocess": "pad", "input_nc": 5, "output_nc": 1, "size_divisor": 4, "no_flip": True}
    folder = create_dataset("paired", DataConfig(tmp_path, **read))
    sharded = create_dataset("shards", DataConfig(shards, shard_cache=tmp_path / "cache", **read))
    assert sharded.sample_sizes() == folder.sample_sizes() == [(16, 12), (16, 12)]
    for i in range(2):
        assert sharded[i]["A"].shape == (5, 16, 12)
        assert torch.equal(sharded[i]["A"], folder[i]["A"]) and torch.equal(sharded[i]["B"], folder[i]["B"])
