"""Preprocessing that keeps each image's own size cannot stack images of different sizes into
one batch: find that before the first batch, from the file headers, and name two files.

Until batches are grouped by size, this is the one-line refusal; with grouping it goes away.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from data.config import DataConfig
from data.image_io import DataError, read_header
from data.transforms import PREPROCESS_MODES, output_size

# (stored width, height) -> (width, height) of one sample, per --dataset_mode; the others
# take the whole file.
SAMPLE_OF_FILE: dict[str, Callable[[int, int], tuple[int, int]]] = {
    "aligned": lambda width, height: (width // 2, height),   # A | B side by side
}


def check_one_size(paths: list[Path], dataset_mode: str, cfg: DataConfig, batch_size: int) -> None:
    """Raise :class:`DataError` when two files give samples of different sizes and a batch
    holds more than one sample of a preprocessing without a crop (``none``, ``scale_width``)."""
    if batch_size < 2 or PREPROCESS_MODES.get(cfg.preprocess).crops:
        return
    sample_of = SAMPLE_OF_FILE.get(dataset_mode, lambda width, height: (width, height))
    first: tuple[Path, tuple[int, int], tuple[int, int]] | None = None
    for path in paths:
        stored = read_header(path)
        width, height = sample_of(*stored)
        size = output_size(cfg, height, width)
        if first is None:
            first = (path, stored, size)
        elif size != first[2]:
            (w0, h0), (w1, h1) = first[1], stored
            raise DataError(f"--preprocess {cfg.preprocess} with --batch_size {batch_size} needs images of one "
                            f"size: {first[0]} is {w0}x{h0}, {path} is {w1}x{h1}")
