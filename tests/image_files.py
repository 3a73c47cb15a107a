"""Image files the dataset-tool tests write: seeded noise, and a square whose edges are known."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def noise_image(path: Path, size: tuple[int, int], seed: int, mode: str = "RGB") -> np.ndarray:
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "L": 1}[mode]
    pixels = rng.integers(0, 256, size=(size[1], size[0], channels), dtype=np.uint8).squeeze()
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels, mode=mode).save(path)
    return pixels


def square_photo(path: Path, size: int = 48, box: tuple[int, int, int, int] = (12, 12, 36, 36)) -> None:
    """A dark square on a light background: its edges are known exactly."""
    pixels = np.full((size, size, 3), 220, dtype=np.uint8)
    x0, y0, x1, y1 = box
    pixels[y0:y1, x0:x1] = (30, 60, 120)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
