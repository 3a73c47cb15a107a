"""test.py ``--use_wandb``: one W&B run (job type ``test``) holding the results page's content:
a table with a row per test image (its name, each written image, its metrics) and the means
(and FID/KID) as ``test/<metric>``, logged and in the run's summary.

The images are read back from the files test.py wrote, so W&B shows the pixels on disk;
16-bit results are shown at 8 bits and images of other channel counts by their first three
channels (the first one for two), as the training display shows them.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from reporting.html import ResultRow
from reporting.sinks.wandb import WandbSink, config_from


# Reads a written result as (C, H, W) samples, uint8 or 16-bit ones in a wider integer type: the
# data layer's reader (data.pixels.read_pixels), handed down by test.py.
PixelReader = Callable[[Path], torch.Tensor]


def shown_pixels(path: Path, read: PixelReader) -> np.ndarray:
    """(H, W) or (H, W, 3) uint8: what a browser would show of the written file."""
    pixels = read(path)
    if pixels.dtype != torch.uint8:   # 16-bit samples
        pixels = torch.round(pixels.double() / 257.0).to(torch.uint8)
    channels = pixels.shape[0]
    shown = pixels[:1] if channels in (1, 2) else pixels[:3]
    return np.ascontiguousarray(shown.permute(1, 2, 0).squeeze(2).numpy())


def log_test_results(opt: argparse.Namespace, exp_dir: Path, page_dir: Path, rows: Sequence[ResultRow],
                     summary: Mapping[str, float], read: PixelReader) -> None:
    sink = WandbSink(config_from(opt, exp_dir, job_type="test"))
    if not sink.active:
        return
    wandb = sink.wandb
    visuals = list(dict.fromkeys(label for row in rows for label in row.images))
    metrics = list(dict.fromkeys(name for row in rows for name in row.metrics))
    table = wandb.Table(columns=["image", *visuals, *metrics])
    for row in rows:
        images: list[Any] = [wandb.Image(shown_pixels(page_dir / row.images[v], read), caption=f"{row.name} {v}")
                             if v in row.images else None for v in visuals]
        table.add_data(row.name, *images, *(row.metrics.get(m) for m in metrics))
    means = {f"test/{name}": value for name, value in summary.items()}
    sink.log({"test/results": table, **means})
    sink.close()
