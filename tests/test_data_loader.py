"""The loader: seeded order and augmentation, exact mid-epoch resume, sharding, cache."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DistributedSampler

from data import DataConfig, create_dataset
from data.loader import create_dataloader, set_loader_epoch, skip_batches

N_IMAGES = 7


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pairs")
    (root / "train").mkdir()
    rng = np.random.default_rng(0)
    for i in range(N_IMAGES):
        Image.fromarray(rng.integers(0, 256, (40, 80, 3), dtype=np.uint8)).save(root / "train" / f"{i}.png")
    return root


def dataset(root: Path, **kw):
    return create_dataset("aligned", DataConfig(root, load_size=40, crop_size=32, **kw))


def epoch_batches(loader, epoch: int, start_index: int = 0) -> list[dict]:
    set_loader_epoch(loader, epoch, start_index)
    return list(loader)


def same_batches(left: list[dict], right: list[dict]) -> bool:
    return len(left) == len(right) and all(
        a["A_paths"] == b["A_paths"] and torch.equal(a["A"], b["A"]) and torch.equal(a["B"], b["B"])
        for a, b in zip(left, right))


def test_same_seed_same_epochs_and_epochs_differ(root: Path) -> None:
    ds = dataset(root)
    first = create_dataloader(ds, batch_size=2, shuffle=True, num_workers=0, seed=5)
    second = create_dataloader(ds, batch_size=2, shuffle=True, num_workers=0, seed=5)
    e0, e1 = epoch_batches(first, 0), epoch_batches(first, 1)
    assert same_batches(e0, epoch_batches(second, 0)) and same_batches(e1, epoch_batches(second, 1))
    assert not same_batches(e0, e1)
    other_seed = create_dataloader(ds, batch_size=2, shuffle=True, num_workers=0, seed=6)
    assert not same_batches(e0, epoch_batches(other_seed, 0))
    # Each epoch visits every sample once.
    assert sorted(p for b in e0 for p in b["A_paths"]) == sorted(str(p) for p in ds.paths)


def test_serial_batches_keep_file_order(root: Path) -> None:
    loader = create_dataloader(dataset(root), batch_size=3, shuffle=False, num_workers=0, seed=0)
    paths = [Path(p).name for b in epoch_batches(loader, 2) for p in b["A_paths"]]
    assert paths == sorted(f"{i}.png" for i in range(N_IMAGES))


@pytest.mark.parametrize("k", [1, 2])
def test_resume_mid_epoch_gives_the_rest_of_the_epoch(root: Path, k: int) -> None:
    ds = dataset(root)
    full = epoch_batches(create_dataloader(ds, 2, True, 0, seed=3), epoch=4)
    resumed_loader = create_dataloader(ds, 2, True, 0, seed=3)
    rest = epoch_batches(resumed_loader, epoch=4, start_index=2 * k)
    assert len(rest) == len(full) - k
    assert same_batches(rest, full[k:])
    # The next epoch starts from its beginning again.
    assert len(epoch_batches(resumed_loader, epoch=5)) == len(full)
    # A save after a partial last batch counts past the end: nothing is left of that epoch.
    assert epoch_batches(resumed_loader, epoch=5, start_index=N_IMAGES + 1) == []
    with pytest.raises(ValueError, match="start_index"):
        set_loader_epoch(resumed_loader, 5, start_index=-1)


def test_workers_give_the_same_batches_as_the_main_process(root: Path) -> None:
    ds = dataset(root)
    plain = create_dataloader(ds, 2, True, num_workers=0, seed=1)
    workers = create_dataloader(ds, 2, True, num_workers=2, seed=1)
    assert workers.persistent_workers
    for epoch in (0, 1):   # persistent workers must see the new epoch
        assert same_batches(epoch_batches(plain, epoch), epoch_batches(workers, epoch))
    assert same_batches(epoch_batches(plain, 1, 4), epoch_batches(workers, 1, 4))


def test_cache_gives_identical_items_also_with_workers(root: Path) -> None:
    plain = create_dataloader(dataset(root), 2, True, num_workers=0, seed=2)
    cached_ds = dataset(root, cache=True)
    assert cached_ds.store._packed is not None
    cached = create_dataloader(cached_ds, 2, True, num_workers=1, seed=2)
    for epoch in (0, 1):   # augmentation stays random per epoch with the cache
        assert same_batches(epoch_batches(plain, epoch), epoch_batches(cached, epoch))
    first, second = epoch_batches(cached, 0), epoch_batches(cached, 1)
    assert not same_batches(first, second)


def test_sharding_splits_the_epoch_across_ranks(root: Path) -> None:
    ds = dataset(root)
    shards = []
    for rank in range(2):
        loader = create_dataloader(ds, 1, True, 0, seed=0, rank=rank, world_size=2)
        assert isinstance(loader.sampler, DistributedSampler)
        assert len(loader) == 4   # 7 samples padded to 8, 4 per rank
        shards.append([b["A_paths"][0] for b in epoch_batches(loader, 0)])
    assert set(shards[0]) | set(shards[1]) == {str(p) for p in ds.paths}


def test_skip_batches_and_loader_attributes(root: Path) -> None:
    ds = dataset(root)
    loader = create_dataloader(ds, 2, True, 0, seed=3, drop_last=True)
    set_loader_epoch(loader, 0)
    full = list(loader)
    assert len(full) == N_IMAGES // 2
    set_loader_epoch(loader, 0)
    rest = list(skip_batches(iter(loader), 1))
    assert same_batches(rest, full[1:])
    assert loader.dataset.paths == ds.paths   # the guard wrapper forwards dataset attributes


class _FailsAt(torch.utils.data.Dataset):
    """Four samples; the third raises ``error``."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def __len__(self) -> int:
        return 4

    def __getitem__(self, key) -> torch.Tensor:   # a SampleKey: (index, augmentation seed)
        if key.index == 2:
            raise self.error
        return torch.full((1,), float(key.index))


@pytest.mark.parametrize("workers", [0, 1])
def test_a_data_error_reaches_the_loop_as_raised_with_its_remedy(workers: int) -> None:
    """A shard that could not be fetched is not a bad image file: the loop's line gives the remedy
    of the error's own class, so the class must cross the worker boundary (it crossed as a plain
    DataError, whose remedy names --skip_bad_images)."""
    from data.image_io import DataError
    from data.shards import FetchError
    for error in (FetchError("http://h/s-000000.tar: download cut short (10 of 20 bytes, 3 tries)"),
                  DataError("a/7.png: cannot decode image (truncated)")):
        loader = create_dataloader(_FailsAt(error), 1, shuffle=False, num_workers=workers, seed=0)
        with pytest.raises(DataError) as caught:
            list(loader)
        assert type(caught.value) is type(error) and str(caught.value) == str(error)
        assert caught.value.remedy == error.remedy
    assert "--skip_bad_images" in DataError.remedy and "--skip_bad_images" not in FetchError.remedy
