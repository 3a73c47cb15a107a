"""Image-quality metrics of test results, computed on the 8-bit images as written to disk."""
from __future__ import annotations

import torch
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

from reporting.images import quantize

# PSNR of identical images is infinite; cap it so metrics stay finite numbers in JSON.
PSNR_CAP_DB = 100.0


def _as_saved(image: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1] through 8-bit rounding, exactly as the PNG holds it."""
    return quantize(image).float() / 255.0


def image_metrics(fake: torch.Tensor, real: torch.Tensor) -> dict[str, float]:
    """L1 (mean absolute difference in [0, 1]), PSNR (dB) and SSIM of one (C, H, W) pair."""
    f, r = _as_saved(fake).unsqueeze(0).cpu(), _as_saved(real).unsqueeze(0).cpu()
    psnr = float(peak_signal_noise_ratio(f, r, data_range=1.0))
    return {
        "L1": float((f - r).abs().mean()),
        "PSNR": min(psnr, PSNR_CAP_DB),
        "SSIM": float(structural_similarity_index_measure(f, r, data_range=1.0)),
    }


def mean_metrics(rows: list[dict[str, float]]) -> dict[str, float]:
    if not rows:
        return {}
    return {key: sum(r[key] for r in rows) / len(rows) for key in rows[0]}
