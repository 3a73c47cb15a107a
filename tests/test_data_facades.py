"""A few real images (tests/fixtures: facades and edges2shoes pairs)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from data import DataConfig, create_dataset
from data.loader import create_dataloader, set_loader_epoch

FIXTURES = Path(__file__).resolve().parent / "fixtures"
FACADES = FIXTURES / "facades"
SHOES = FIXTURES / "edges2shoes"


def test_facades_pairs_match_the_two_halves_of_the_file() -> None:
    cfg = DataConfig(FACADES, phase="test", direction="BtoA", preprocess="none", no_flip=True,
                     max_dataset_size=3, size_divisor=256)
    ds = create_dataset("aligned", cfg)
    assert len(ds) == 3
    item = ds[0]
    photo = Image.open(item["A_paths"]).convert("RGB").crop((0, 0, 256, 256))   # left half
    expected = torch.from_numpy(np.array(photo)).permute(2, 0, 1).float()
    # BtoA: the label map (right) is the input, the photo (left) the target.
    assert torch.equal(((item["B"] + 1) * 127.5).round(), expected)
    assert tuple(item["A"].shape) == (3, 256, 256)


def test_facades_train_batch_with_the_classic_settings() -> None:
    cfg = DataConfig(FACADES, direction="BtoA", max_dataset_size=4, cache=True)
    loader = create_dataloader(create_dataset("aligned", cfg), batch_size=2, shuffle=True,
                               num_workers=0, seed=0)
    set_loader_epoch(loader, 0)
    batch = next(iter(loader))
    assert tuple(batch["A"].shape) == (2, 3, 256, 256) == tuple(batch["B"].shape)
    assert batch["A"].min() >= -1 and batch["A"].max() <= 1 and batch["A"].std() > 0.1


def test_edges2shoes_grayscale_edges_and_colorization() -> None:
    edges = create_dataset("aligned", DataConfig(SHOES, input_nc=1, max_dataset_size=2,
                                                 preprocess="resize_and_crop", load_size=64, crop_size=64))
    assert tuple(edges[0]["A"].shape) == (1, 64, 64) and tuple(edges[0]["B"].shape) == (3, 64, 64)
    color = create_dataset("colorization", DataConfig(SHOES, phase="val", input_nc=1, output_nc=2,
                                                      max_dataset_size=2, load_size=64, crop_size=64))
    assert tuple(color[1]["B"].shape) == (2, 64, 64) and color[1]["B"].abs().max() > 0.05
