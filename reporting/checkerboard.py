"""A spectral measure of checkerboard artifacts in generated images.

A stride-2 transposed convolution whose kernel overlaps unevenly adds a pattern that repeats
every 2 pixels; in the image's 2-D spectrum that pattern sits at the stride-2 frequencies,
half a cycle per pixel along rows, columns or both (the Nyquist bins (H/2, 0), (0, W/2) and
(H/2, W/2)). Natural photos have little energy there. The measure of one image is the share
of its high-pass energy (every frequency with |f_y| or |f_x| >= 1/4 cycle per pixel) that lies
in those bins; of a generated set, the mean share of the fakes over the mean share of the
matching real images: 1 means as periodic as the photos, 2 twice as much.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

HIGH_PASS_FROM = 0.25  # cycles per pixel


def stride2_share(image: np.ndarray) -> float:
    """(H, W) or (H, W, C) array -> share of high-pass spectral energy at the stride-2 bins
    (computed on the mean over channels, the image's brightness). H and W must be even."""
    gray = image.astype(np.float64)
    if gray.ndim == 3:
        gray = gray.mean(axis=2)
    h, w = gray.shape
    if h % 2 or w % 2:
        raise ValueError(f"the stride-2 frequencies need even sides, got {h}x{w}")
    power = np.abs(np.fft.fft2(gray - gray.mean())) ** 2
    fy, fx = np.abs(np.fft.fftfreq(h))[:, None], np.abs(np.fft.fftfreq(w))[None, :]
    high = (fy >= HIGH_PASS_FROM) | (fx >= HIGH_PASS_FROM)
    total = power[high].sum()
    if total == 0:
        return 0.0
    stride2 = power[h // 2, 0] + power[0, w // 2] + power[h // 2, w // 2]
    return float(stride2 / total)


def checkerboard_ratio(fake: Sequence[np.ndarray], real: Sequence[np.ndarray]) -> float:
    """Mean stride-2 share of the fakes over that of the real images."""
    real_share = float(np.mean([stride2_share(x) for x in real]))
    fake_share = float(np.mean([stride2_share(x) for x in fake]))
    if real_share == 0:
        raise ValueError("the real images have no energy at the stride-2 frequencies: the ratio is undefined")
    return fake_share / real_share


def checkerboard_ratio_of_folders(fake: Sequence[Path], real: Sequence[Path]) -> float:
    read = lambda paths: [np.asarray(Image.open(p).convert("RGB")) for p in paths]  # noqa: E731
    return checkerboard_ratio(read(fake), read(real))
