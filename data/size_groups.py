"""Batches of one image size, for sets whose images keep sizes of their own (``--preprocess
pad`` or ``none``): the collate step can only stack tensors of one size.

Like :class:`data.loader.ResumableSampler`, an epoch depends only on (seed, epoch): the
indices are shuffled with a generator seeded by seed + epoch, cut into batches within each
size (a size's last batch may be short), and the batches shuffled again; rank r of W takes
batches r, r + W, ... so the ranks' shares are disjoint. When the batches do not divide
among the ranks, the first batches are repeated at the end for the ranks short of one (as
DistributedSampler pads), so every rank takes the same number of steps.

Resuming: the training counter advances by the batch size per step, so ``start_index //
batch_size`` is the number of this rank's batches already taken; they are skipped.
"""
from __future__ import annotations

from typing import Iterator, Sequence

import torch
from torch.utils.data import Sampler

from data.transforms import SampleKey, sample_seed

Size = tuple[int, int]


class SizeGroupedBatchSampler(Sampler[list[SampleKey]]):
    def __init__(self, sizes: Sequence[Size], batch_size: int, *, seed: int, shuffle: bool,
                 rank: int = 0, world_size: int = 1) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside 0..{world_size - 1}")
        self.sizes, self.batch_size = list(sizes), batch_size
        self.seed, self.shuffle, self.rank, self.world_size = seed, shuffle, rank, world_size
        self.epoch, self.start_batch = 0, 0

    def all_batches(self) -> list[list[int]]:
        """Every rank's batches of the current epoch, before sharding."""
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        n = len(self.sizes)
        order = torch.randperm(n, generator=generator).tolist() if self.shuffle else list(range(n))
        groups: dict[Size, list[int]] = {}
        for index in order:
            groups.setdefault(tuple(self.sizes[index]), []).append(index)
        batches = [members[i:i + self.batch_size] for members in groups.values()
                   for i in range(0, len(members), self.batch_size)]
        if self.shuffle:
            batches = [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]
        return batches

    def rank_batches(self) -> list[list[int]]:
        """This rank's batches of the current epoch, from its start."""
        batches = self.all_batches()
        total = -(-len(batches) // self.world_size) * self.world_size
        padded = batches + [batches[i % len(batches)] for i in range(total - len(batches))]
        return padded[self.rank:total:self.world_size]

    @property
    def num_batches(self) -> int:
        groups: dict[Size, int] = {}
        for size in self.sizes:
            groups[tuple(size)] = groups.get(tuple(size), 0) + 1
        batches = sum(-(-count // self.batch_size) for count in groups.values())
        return -(-batches // self.world_size)

    @property
    def num_samples(self) -> int:
        """This rank's epoch in the units the training counter uses (batch slots)."""
        return self.num_batches * self.batch_size

    def set_epoch(self, epoch: int, start_index: int = 0) -> None:
        if start_index < 0:
            raise ValueError(f"start_index must be 0 or more, not {start_index}")
        self.epoch = epoch
        self.start_batch = min(-(-start_index // self.batch_size), self.num_batches)

    def __iter__(self) -> Iterator[list[SampleKey]]:
        for batch in self.rank_batches()[self.start_batch:]:
            yield [SampleKey(i, sample_seed(self.seed, self.epoch, i)) for i in batch]

    def __len__(self) -> int:
        return self.num_batches - self.start_batch


def needs_size_groups(dataset: object, batch_size: int) -> list[Size] | None:
    """The per-sample sizes when ``dataset`` gives images of several sizes and batches hold
    more than one image; None when plain batching works."""
    sizes_of = getattr(dataset, "sample_sizes", None)
    known = sizes_of() if batch_size >= 2 and sizes_of is not None else None
    if known is None:
        return None
    sizes = [tuple(s) for s in known]
    return sizes if len(set(sizes)) > 1 else None
