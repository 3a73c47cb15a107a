"""Image-quality metrics of test results, computed on the 8-bit images as written to disk."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from reporting.fid import score_images
from reporting.images import to_uint8

# PSNR of identical images is infinite; cap it so metrics stay finite numbers in JSON.
PSNR_CAP_DB = 100.0


def _unit_batch(pixels: np.ndarray) -> torch.Tensor:
    """(H, W) or (H, W, C) uint8 (or uint16) -> (1, C, H, W) float in [0, 1]."""
    top = 65535.0 if pixels.dtype == np.uint16 else 255.0
    array = torch.from_numpy(np.array(pixels, dtype=np.float32)) / top   # a copy: the input may be read-only
    return (array.unsqueeze(-1) if array.dim() == 2 else array).permute(2, 0, 1).unsqueeze(0)


def written_metrics(fake: np.ndarray, real: np.ndarray) -> dict[str, float]:
    """L1 (mean absolute difference in [0, 1]), PSNR (dB) and SSIM of two 8-bit images as
    they are stored ((H, W) or (H, W, C) uint8). SSIM is torchmetrics': an 11-tap Gaussian
    window (sigma 1.5) over the whole image with reflected borders, averaged over channels."""
    if fake.shape != real.shape:
        raise ValueError(f"metrics need images of one shape, got {fake.shape} and {real.shape}")
    # Imported on first use: torchmetrics brings scipy.signal and more, as much import time as
    # torch itself, and a training run needs it only if it validates.
    from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

    f, r = _unit_batch(fake), _unit_batch(real)
    psnr = float(peak_signal_noise_ratio(f, r, data_range=1.0))
    return {
        "L1": float((f - r).abs().mean()),
        "PSNR": min(psnr, PSNR_CAP_DB),
        "SSIM": float(structural_similarity_index_measure(f, r, data_range=1.0)),
    }


def image_metrics(fake: torch.Tensor, real: torch.Tensor) -> dict[str, float]:
    """The metrics of two (C, H, W) images in [-1, 1], through the 8-bit rounding of a PNG."""
    return written_metrics(to_uint8(fake), to_uint8(real))


def mean_metrics(rows: list[dict[str, float]]) -> dict[str, float]:
    if not rows:
        return {}
    return {key: sum(r[key] for r in rows) / len(rows) for key in rows[0]}


def set_metrics(fakes: Sequence[np.ndarray], reals: Sequence[np.ndarray]) -> dict[str, float]:
    """FID and KID (mean and spread over subsets) of the written fake set against the written
    real set (reporting/fid.py), for ``test.py --fid``."""
    def as_batch(images: Sequence[np.ndarray]) -> torch.Tensor:   # (H, W[, C]) uint8 -> (N, C, H, W)
        return torch.from_numpy(np.stack([np.atleast_3d(x) for x in images])).permute(0, 3, 1, 2)

    score = score_images(as_batch(reals), as_batch(fakes))
    return {**score.as_metrics(), "KID_subsets": score.kid_subsets, "KID_subset_size": score.kid_subset_size}
