"""Training on a shard set: the folder's weights, exact resume, and DDP with loader workers.

8 pairs of 32 px, batch 2: 4 steps an epoch, 2 epochs (the fault tests' run). The oracle is the
same run on the folder the shards were made from, compared tensor for tensor.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import test as test_driver
import train as train_script
from data import DataConfig, create_dataset
from data.loader import create_dataloader, set_loader_epoch
from tests.distributed_helpers import run_distributed
from tests.pipeline_helpers import FIXTURE_FACADES, tiny_args, train_tiny_run
from tests.shard_helpers import make_shard_set, serve_folder
from tests.test_ddp import write_pairs
from tests.test_faults import args, assert_same_training, weights


@pytest.fixture(scope="module")
def pairs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_pairs(tmp_path_factory.mktemp("shard_pairs"))


@pytest.fixture(scope="module")
def shard_set(pairs: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_shard_set(pairs, tmp_path_factory.mktemp("shard_set"), phases=("train", "test"))


@pytest.fixture(scope="module")
def folder_run(pairs: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    ckpt = tmp_path_factory.mktemp("folder_run")
    assert train_script.main(args(pairs, ckpt, "folder")) == 0
    return weights(ckpt / "folder" / "latest.pt")


def shard_args(root: Path | str, ckpt: Path, name: str, *extra: str) -> list[str]:
    # Two loader workers here against none for the folder run: the split must not matter.
    return [*args(Path("unused"), ckpt, name, *extra), "--dataroot", str(root), "--dataset_mode", "shards",
            "--num_threads", "2", "--shard_cache", str(ckpt / "shard_cache")]


def test_training_on_shards_ends_with_the_folder_weights(shard_set: Path, tmp_path: Path, folder_run: dict) -> None:
    assert train_script.main(shard_args(shard_set, tmp_path, "shards")) == 0
    assert_same_training(weights(tmp_path / "shards" / "latest.pt"), folder_run)


def test_shards_of_real_facades_pairs_train_to_the_folder_weights(tmp_path: Path) -> None:
    """Real JPEG pairs (the facades in tests/fixtures), resized and randomly cropped and flipped."""
    shards = make_shard_set(FIXTURE_FACADES, tmp_path / "shards")
    runs = {"folder": [], "shards": ["--dataroot", str(shards), "--dataset_mode", "shards", "--num_threads", "1",
                                     "--shard_cache", str(tmp_path / "cache")]}
    for name, extra in runs.items():
        argv = [*tiny_args(FIXTURE_FACADES, tmp_path, name), "--load_size", "40", "--batch_size", "2",
                "--direction", "BtoA", "--n_epochs", "2", "--n_epochs_decay", "0", "--amp", "none", *extra]
        assert train_script.main(argv) == 0
    assert_same_training(weights(tmp_path / "shards" / "latest.pt"), weights(tmp_path / "folder" / "latest.pt"))


def test_training_on_shards_over_http_ends_with_the_folder_weights(shard_set: Path, tmp_path: Path,
                                                                   folder_run: dict) -> None:
    with serve_folder(shard_set) as url:
        assert train_script.main(shard_args(url, tmp_path, "http")) == 0
    assert list((tmp_path / "shard_cache").glob("*train-00000*.tar"))   # read from the downloads
    assert_same_training(weights(tmp_path / "http" / "latest.pt"), folder_run)


def test_stop_mid_epoch_then_continue_train_on_shards_equals_uninterrupted(
        shard_set: Path, tmp_path: Path, folder_run: dict, capsys: pytest.CaptureFixture[str]) -> None:
    argv = shard_args(shard_set, tmp_path, "resumed")
    assert train_script.main([*argv, "--max_steps", "5"]) == 0   # stops after step 1 of epoch 2
    assert train_script.main([*argv, "--continue_train"]) == 0
    assert "resumed from latest at epoch 2, step 5" in capsys.readouterr().out
    assert_same_training(weights(tmp_path / "resumed" / "latest.pt"), folder_run)


def _epoch_names(rank: int, world_size: int, root: str, cache: str) -> list[list[str]]:
    dataset = create_dataset("shards", DataConfig(root, preprocess="none", shard_cache=cache))
    loader = create_dataloader(dataset, batch_size=1, shuffle=True, num_workers=2, seed=3, rank=rank,
                               world_size=world_size)
    epochs = []
    for epoch in (1, 2):
        set_loader_epoch(loader, epoch)
        epochs.append([name for batch in loader for name in batch["A_paths"]])
    return epochs


def test_ddp_two_ranks_two_workers_see_every_sample_once_an_epoch(shard_set: Path, tmp_path: Path) -> None:
    ranks = run_distributed(_epoch_names, 2, str(shard_set), str(tmp_path), timeout_s=120)
    names = sorted(f"train/{i:03d}.png" for i in range(8))
    for epoch in (0, 1):
        seen = ranks[0][epoch] + ranks[1][epoch]
        assert sorted(seen) == names     # each once: none dropped, none repeated
        assert len(ranks[0][epoch]) == len(ranks[1][epoch]) == 4
    assert ranks[0][0] != ranks[0][1]    # a new order each epoch


def test_mid_epoch_start_gives_the_rest_of_the_uninterrupted_epoch(shard_set: Path, tmp_path: Path) -> None:
    dataset = create_dataset("shards", DataConfig(shard_set, load_size=36, crop_size=32, shard_cache=tmp_path))
    loader = create_dataloader(dataset, batch_size=2, shuffle=True, num_workers=2, seed=1)
    set_loader_epoch(loader, 3)
    full = list(loader)
    set_loader_epoch(loader, 3, start_index=2)
    rest = list(loader)
    assert len(rest) == len(full) - 1
    for a, b in zip(full[1:], rest):
        assert a["A_paths"] == b["A_paths"] and torch.equal(a["A"], b["A"]) and torch.equal(a["B"], b["B"])


def test_test_py_on_shards_writes_the_images_it_writes_for_the_folder(tmp_path: Path) -> None:
    root, checkpoints = train_tiny_run(tmp_path / "run", test_images=2)
    shards = make_shard_set(root, tmp_path / "shards", phases=("test",))
    sources = {"folder": [], "shards": ["--dataroot", str(shards), "--dataset_mode", "shards",
                                        "--shard_cache", str(tmp_path / "cache")]}
    written = {}
    for name, extra in sources.items():
        assert test_driver.main(["--dataroot", str(root), "--checkpoints_dir", str(checkpoints), "--name", "tiny",
                                 "--results_dir", str(tmp_path / name), "--load_size", "32", "--crop_size", "32",
                                 "--num_threads", "0", "--gpu_ids", "-1", *extra]) == 0
        images = tmp_path / name / "tiny" / "test_latest" / "images"
        written[name] = {p.name: np.asarray(Image.open(p)) for p in sorted(images.iterdir())}
    assert written["folder"] and list(written["shards"]) == list(written["folder"])   # same names
    for image, pixels in written["folder"].items():
        assert np.array_equal(written["shards"][image], pixels), image
