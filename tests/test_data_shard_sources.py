"""Where a shard set's files come from and go to: sample names through linked folders, HTTP
error statuses, shards whose size is not the index's, and a make_shards run that fails midway."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from data import DataConfig, DataError, create_dataset
from data.shard_format import ShardLimits
from datasets.make_shards import main as make_shards_main, make_shards
from tests.pipeline_helpers import make_aligned_dataset
from tests.shard_helpers import make_shard_set, serve_folder


def test_names_are_relative_to_the_dataroot_as_seen_through_linked_folders(tmp_path: Path) -> None:
    store = make_aligned_dataset(tmp_path / "store", {"train": 2})
    (store / "train" / "sub").mkdir()
    os.replace(store / "train" / "001.png", store / "train" / "sub" / "001.png")
    root = tmp_path / "root"
    root.mkdir()
    (root / "train").symlink_to(store / "train", target_is_directory=True)
    index = make_shards(root, "aligned", tmp_path / "shards", ["train"], ShardLimits(10, 2**30))["train"]
    assert index["pix2pix"]["names"] == ["train/000.png", "train/sub/001.png"]


def test_an_http_error_for_a_shard_is_one_line_and_nothing_is_cached(tmp_path: Path) -> None:
    shards = make_shard_set(make_aligned_dataset(tmp_path / "pairs", {"train": 3}), tmp_path / "shards",
                            samples_per_shard=1)
    (shards / "train-000001.tar").unlink()
    cache = tmp_path / "cache"
    with serve_folder(shards) as url:
        dataset = create_dataset("shards", DataConfig(url, shard_cache=cache, preprocess="none"))
        dataset[0]
        for _ in range(2):   # asked again, it is fetched again, not taken from the cache
            with pytest.raises(DataError) as err:
                dataset[1]
            assert str(err.value) == f"{url}/train-000001.tar: HTTP error 404 (File not found)"
        dataset[2]
    assert sorted(p.name.split("__")[1] for p in cache.iterdir() if not p.name.endswith((".lock", ".verified"))) == \
        ["train-000000.tar", "train-000002.tar"]


def test_a_local_shard_of_another_size_than_the_index_says_stops_at_start_up(tmp_path: Path) -> None:
    shards = make_shard_set(make_aligned_dataset(tmp_path / "pairs", {"train": 3}), tmp_path / "shards",
                            samples_per_shard=2)
    shard = shards / "train-000001.tar"
    recorded = shard.stat().st_size
    shard.write_bytes(shard.read_bytes()[:1000])
    with pytest.raises(DataError) as err:
        create_dataset("shards", DataConfig(shards, shard_cache=tmp_path / "cache"))
    assert str(err.value).startswith(f"{shard}: 1000 bytes, but {shards / 'train.json'} records {recorded};")
    assert "\n" not in str(err.value)


def test_a_failure_in_a_later_phase_leaves_the_output_as_it_was(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    source = make_aligned_dataset(tmp_path / "pairs", {"train": 2, "test": 2})
    bad = source / "test" / "001.png"
    good = bad.read_bytes()
    bad.write_bytes(b"not a png")
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    args = ["--dataroot", str(source), "--output", str(out), "--phases", "train", "test"]
    assert make_shards_main(args) == 2
    assert f"{bad}: cannot read image" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "pairs"]   # no staging folder left
    bad.write_bytes(good)
    assert make_shards_main(args) == 0   # the same command, run again, now succeeds
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "test-000000.tar", "test.json",
                                                     "train-000000.tar", "train.json"]
