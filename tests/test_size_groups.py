"""Images of many sizes: reflect padding against numpy, batches of one size that keep the
loader's exact mid-epoch resume and its disjoint sharding across ranks."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from data import DataConfig, create_dataset
from data.loader import create_dataloader, set_loader_epoch
from data.padding import crop_padding, pad_to_multiple, padding_for, reflect_pad
from data.size_groups import SizeGroupedBatchSampler

SIZES = [(8, 12), (5, 7), (8, 12), (5, 7), (9, 4), (8, 12), (5, 7), (8, 12), (9, 4), (5, 7), (8, 12)]


def test_reflect_padding_matches_numpy_and_crops_back() -> None:
    image = torch.arange(45 * 72).view(1, 45, 72)
    pad = padding_for(45, 72, 16)
    assert pad == (1, 2, 4, 4)                                 # 45 -> 48, 72 -> 80, odd pixel after
    assert padding_for(405, 720, 256) == (53, 54, 24, 24)      # a 720x405 scan is seen as 768x512 by unet_256
    padded = pad_to_multiple(image, 16)
    oracle = np.pad(image[0].numpy(), ((1, 2), (4, 4)), mode="reflect")
    assert np.array_equal(padded[0].numpy(), oracle)
    assert torch.equal(crop_padding(padded, 45, 72, 16), image)


def test_padding_wider_than_the_image_keeps_mirroring() -> None:
    row = torch.tensor([[[0, 1, 2]]])
    # Mirrored about the edges again and again (index -1 -> 1, -2 -> 2, -3 -> 1, -4 -> 0, ...).
    assert reflect_pad(row, padding_for(1, 3, 1)._replace(left=5, right=4))[0, 0].tolist() == \
        [1, 0, 1, 2, 1] + [0, 1, 2] + [1, 0, 1, 2]
    assert reflect_pad(torch.tensor([[[7]]]), padding_for(1, 1, 4))[0].tolist() == [[7] * 4] * 4


def epoch(sampler: SizeGroupedBatchSampler, number: int, start: int = 0) -> list[list[int]]:
    sampler.set_epoch(number, start)
    return [[key.index for key in batch] for batch in sampler]


@pytest.mark.parametrize("batch_size", [2, 3])
def test_batches_hold_one_size_and_every_sample_once(batch_size: int) -> None:
    sampler = SizeGroupedBatchSampler(SIZES, batch_size, seed=3, shuffle=True)
    batches = epoch(sampler, 1)
    assert all(len({SIZES[i] for i in b}) == 1 and 1 <= len(b) <= batch_size for b in batches)
    assert sorted(i for b in batches for i in b) == list(range(len(SIZES)))
    assert len(batches) == len(sampler.rank_batches()) == sampler.num_batches
    assert epoch(sampler, 2) != batches and epoch(sampler, 1) == batches   # a new order per epoch, same seed same order


def test_ranks_take_disjoint_shares_of_the_same_epoch() -> None:
    shares = [epoch(SizeGroupedBatchSampler(SIZES, 3, seed=0, shuffle=True, rank=r, world_size=2), 4)
              for r in (0, 1)]
    every = epoch(SizeGroupedBatchSampler(SIZES, 3, seed=0, shuffle=True), 4)
    # Sizes 5 + 4 + 2 in batches of 3: 2 + 2 + 1 = 5 batches over 2 ranks: rank 0 takes batches
    # 0, 2, 4, rank 1 takes 1, 3 and repeats batch 0, so both take 3 steps.
    assert len(every) == 5
    assert shares[0] == every[0::2] and shares[1] == every[1::2] + [every[0]]
    assert len(shares[0]) == len(shares[1])
    assert not {i for b in shares[0] for i in b} & {i for b in every[1::2] for i in b}


def write_set(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate(SIZES):
        for side in ("A", "B"):
            path = root / side / "train" / f"{i:02d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8)).save(path)
    return root


@pytest.mark.parametrize("batch_size", [2, 3])
def test_loader_of_mixed_sizes_resumes_mid_epoch_bit_identically(tmp_path: Path, batch_size: int) -> None:
    cfg = DataConfig(write_set(tmp_path), input_nc=1, output_nc=1, preprocess="pad", size_divisor=4)
    dataset = create_dataset("paired", cfg)

    def batches(start: int = 0, workers: int = 0) -> list[dict]:
        loader = create_dataloader(dataset, batch_size, shuffle=True, num_workers=workers, seed=5)
        set_loader_epoch(loader, 2, start_index=start)
        return list(loader)

    whole = batches()
    assert sorted(p for b in whole for p in b["A_paths"]) == sorted(str(p) for p in dataset.paths)
    assert {tuple(b["A"].shape[-2:]) for b in whole} == {(8, 12), (8, 8), (12, 4)}   # padded to multiples of 4
    # Stopped after 2 steps: the training counter says 2 * batch_size samples were taken.
    resumed = batches(start=2 * batch_size, workers=2)
    assert len(resumed) == len(whole) - 2
    for a, b in zip(whole[2:], resumed):
        assert a["A_paths"] == b["A_paths"] and torch.equal(a["A"], b["A"]) and torch.equal(a["B"], b["B"])


def test_same_size_sets_keep_the_plain_sampler(tmp_path: Path) -> None:
    from data.loader import ResumableSampler

    cfg = DataConfig(write_set(tmp_path), input_nc=1, output_nc=1, preprocess="crop", crop_size=4, size_divisor=4)
    loader = create_dataloader(create_dataset("paired", cfg), 3, shuffle=True, num_workers=0, seed=0)
    assert isinstance(loader.sampler, ResumableSampler)
