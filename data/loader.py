"""The DataLoader: seeded, resumable mid-epoch, shardable across processes, and clean on errors.

The order of an epoch and every sample's crop and flip depend only on (seed, epoch, index):
the sampler draws its permutation from a generator seeded with seed + epoch, and hands each
worker a :class:`SampleKey` whose augmentation seed comes from (seed, epoch, index). So an
epoch interrupted after k samples and resumed with ``set_loader_epoch(loader, epoch,
start_index=k)`` delivers exactly the batches the uninterrupted run would have, whatever the
number of workers.

A :class:`DataError` raised inside a worker (a file that went bad after the start-up scan)
comes back to the main process as a plain ``DataError`` with its one-line message, not as a
worker traceback.
"""
from __future__ import annotations

import random
from functools import partial
from typing import Any, Iterator, NamedTuple, Sequence, Sized

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, default_collate

from data.image_io import DataError
from data.size_groups import SizeGroupedBatchSampler, needs_size_groups
from data.transforms import SampleKey, sample_seed
from util.errors import OptionError


class ResumableSampler(DistributedSampler):
    """Yields ``SampleKey(index, seed)`` for this rank's share of an epoch.

    Sharding and padding follow :class:`DistributedSampler` (each rank gets every
    world_size-th index of the padded permutation); with world_size 1 it is a plain seeded
    shuffle or the serial order. ``start_index`` skips the first samples of this rank's epoch.
    """

    def __init__(self, dataset: Sized, *, seed: int, shuffle: bool, rank: int = 0,
                 world_size: int = 1) -> None:
        super().__init__(dataset, num_replicas=world_size, rank=rank, shuffle=shuffle, seed=seed,
                         drop_last=False)
        self.start_index = 0

    def set_epoch(self, epoch: int, start_index: int = 0) -> None:
        if start_index < 0:
            raise ValueError(f"start_index must be 0 or more, not {start_index}")
        self.epoch = epoch
        # A counter of batches x batch_size overshoots when the last batch was partial; any
        # start at or past the end means the epoch's samples are all taken.
        self.start_index = min(start_index, self.num_samples)

    def epoch_indices(self) -> list[int]:
        """This rank's dataset indices for the current epoch, from its start."""
        n = len(self.dataset)
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(n, generator=generator).tolist()
        else:
            order = list(range(n))
        # Pad by wrapping around so every rank gets the same number of samples.
        while len(order) < self.total_size:
            order += order[: self.total_size - len(order)]
        return order[self.rank:self.total_size:self.num_replicas]

    def __iter__(self) -> Iterator[SampleKey]:
        for index in self.epoch_indices()[self.start_index:]:
            yield SampleKey(index, sample_seed(self.seed, self.epoch, index))

    def __len__(self) -> int:
        # What is left of the epoch, so len(loader) and progress bars are right after a resume.
        return self.num_samples - self.start_index


class _Failed(NamedTuple):
    error: DataError   # the instance, pickled with its class: a download's failure stays one


class GuardedDataset(Dataset):
    """Turns a :class:`DataError` into a value, so it crosses the worker boundary intact."""

    def __init__(self, inner: Dataset) -> None:
        self.inner = inner

    def __len__(self) -> int:
        return len(self.inner)

    def __getitem__(self, key: Any) -> Any:
        try:
            return self.inner[key]
        except DataError as err:
            return _Failed(err)

    def __getattr__(self, name: str) -> Any:
        # Delegate (paths, store, cfg ...) to the wrapped dataset; guard against recursion
        # while unpickling, when ``inner`` is not set yet.
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)


def _collate(items: Sequence[Any]) -> Any:
    for item in items:
        if isinstance(item, _Failed):
            return item
    return default_collate(items)


class _CheckedIterator:
    def __init__(self, inner: Iterator[Any]) -> None:
        self._inner = inner

    def __iter__(self) -> _CheckedIterator:
        return self

    def __len__(self) -> int:
        return len(self._inner)  # type: ignore[arg-type]

    def __next__(self) -> Any:
        batch = next(self._inner)
        if isinstance(batch, _Failed):
            raise batch.error
        return batch


class GuardedDataLoader(DataLoader):
    def __iter__(self) -> _CheckedIterator:  # type: ignore[override]
        return _CheckedIterator(super().__iter__())


class SizeGroupedDataLoader(GuardedDataLoader):
    """A loader whose batches come from a :class:`SizeGroupedBatchSampler`; ``loader.sampler``
    is that batch sampler, so callers see one interface (num_samples, set_epoch) either way."""

    @property  # type: ignore[override]
    def sampler(self) -> SizeGroupedBatchSampler:
        return self.batch_sampler

    @sampler.setter
    def sampler(self, value: Any) -> None:
        pass  # DataLoader.__init__ stores a default sampler that a batch sampler makes unused


def _seed_worker(worker_id: int, *, seed: int, rank: int) -> None:
    # torch is already seeded per worker from the loader's generator; numpy and random are not.
    worker_seed = sample_seed(seed, rank, worker_id)
    np.random.seed(worker_seed % 2**32)
    random.seed(worker_seed)


def create_dataloader(dataset: Dataset, batch_size: int, shuffle: bool, num_workers: int, seed: int,
                      rank: int = 0, world_size: int = 1, drop_last: bool = False,
                      pin_memory: bool = False) -> DataLoader:
    """A loader over this rank's shard; call :func:`set_loader_epoch` before each epoch."""
    if batch_size < 1:
        raise OptionError(f"--batch_size must be positive, not {batch_size}")
    if num_workers < 0:
        raise OptionError(f"--num_threads must be 0 or more, not {num_workers}")
    common = dict(collate_fn=_collate, num_workers=num_workers, pin_memory=pin_memory,
                  generator=torch.Generator().manual_seed(seed + rank),
                  worker_init_fn=partial(_seed_worker, seed=seed, rank=rank), persistent_workers=num_workers > 0)
    sizes = needs_size_groups(dataset, batch_size)
    if sizes is not None:
        batches = SizeGroupedBatchSampler(sizes, batch_size, seed=seed, shuffle=shuffle, rank=rank,
                                          world_size=world_size)
        return SizeGroupedDataLoader(GuardedDataset(dataset), batch_sampler=batches, **common)
    sampler = ResumableSampler(dataset, seed=seed, shuffle=shuffle, rank=rank, world_size=world_size)
    return GuardedDataLoader(GuardedDataset(dataset), batch_size=batch_size, sampler=sampler,
                             drop_last=drop_last, **common)


def set_loader_epoch(loader: DataLoader, epoch: int, start_index: int = 0) -> None:
    """Select the epoch (its order and augmentation) and the sample of this rank to start at.

    To resume after ``k`` finished batches of this epoch, pass ``start_index=k * batch_size``.
    """
    sampler = loader.sampler
    if isinstance(sampler, (ResumableSampler, SizeGroupedBatchSampler)):
        sampler.set_epoch(epoch, start_index)
    elif start_index:
        raise ValueError("this loader's sampler cannot start mid-epoch; use skip_batches")
    elif hasattr(sampler, "set_epoch"):
        sampler.set_epoch(epoch)


def skip_batches(loader_iter: Iterator[Any], n: int) -> Iterator[Any]:
    """Consume ``n`` batches (loading them); a fallback for loaders without a ResumableSampler."""
    for _ in range(n):
        next(loader_iter)
    return loader_iter


def until_bad(loader: DataLoader) -> Iterator[tuple[Any, DataError | None]]:
    """The loader's batches, each with None; a batch that could not be decoded (damage a header
    did not show) ends them with (None, its DataError), so that the caller can agree with the
    other ranks and save before it stops (training/loop.py, inference/validation.py)."""
    iterator = iter(loader)
    while True:
        try:
            batch = next(iterator)
        except StopIteration:
            return
        except DataError as err:
            yield None, err
            return
        yield batch, None
