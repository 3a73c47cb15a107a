"""The quality metrics, one registry entry each, and how the per-image ones are computed on
the 8-bit images as written to disk.

``METRICS`` is the one place a metric is stated: how it is computed (per image) or that it
describes a set (FID/KID, reporting/fid.py), which way is better, and what else is reported
with it. test.py, validation, ``--best_metric``, the compare page and the README's table read
it; a new metric is one entry here plus its oracle row in tests/test_metrics_oracle.py.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from reporting.fid import score_images
from reporting.images import to_uint8
from util.registry import Registry

# PSNR of identical images is infinite; cap it so metrics stay finite numbers in JSON.
PSNR_CAP_DB = 100.0

IMAGE, SET = "image", "set"   # a metric's scope: the mean over images, or one figure of the set
# (fake, real) as (1, C, H, W) float in [0, 1] -> the figure
ImageScore = Callable[[torch.Tensor, torch.Tensor], float]


@dataclass(frozen=True)
class MetricSpec:
    higher_is_better: bool
    scope: str                            # IMAGE or SET
    compute: ImageScore | None = None     # per-image metrics only; set metrics come from reporting/fid.py
    companions: tuple[str, ...] = ()      # reported beside it, never ranked (KID's spread over subsets)

    @property
    def goal(self) -> str:
        return "higher" if self.higher_is_better else "lower"


def _l1(f: torch.Tensor, r: torch.Tensor) -> float:
    return float((f - r).abs().mean())


def _psnr(f: torch.Tensor, r: torch.Tensor) -> float:
    # Imported on first use: torchmetrics brings scipy.signal and more, as much import time as
    # torch itself, and a training run needs it only if it validates.
    from torchmetrics.functional.image import peak_signal_noise_ratio
    return min(float(peak_signal_noise_ratio(f, r, data_range=1.0)), PSNR_CAP_DB)


def _ssim(f: torch.Tensor, r: torch.Tensor) -> float:
    from torchmetrics.functional.image import structural_similarity_index_measure
    return float(structural_similarity_index_measure(f, r, data_range=1.0))


METRICS: Registry[MetricSpec] = Registry("metric")
METRICS.add("L1", MetricSpec(False, IMAGE, _l1), help="mean absolute difference of the 8-bit pixels, in [0, 1]")
METRICS.add("PSNR", MetricSpec(True, IMAGE, _psnr), help=f"dB, capped at {PSNR_CAP_DB:g} for identical images")
METRICS.add("SSIM", MetricSpec(True, IMAGE, _ssim),
            help="torchmetrics': an 11-tap Gaussian window (sigma 1.5) over the whole image with reflected "
                 "borders, averaged over channels")
METRICS.add("FID", MetricSpec(False, SET), help="Frechet Inception distance of the fake set to the real set")
METRICS.add("KID", MetricSpec(False, SET, companions=("KID_std",)),
            help="kernel Inception distance, the mean over subsets (KID_std: their spread)")


def metric_names(scope: str | None = None) -> list[str]:
    """The registered metrics, of one scope (IMAGE or SET) or all, in registry order."""
    return [e.name for e in METRICS if scope is None or e.obj.scope == scope]


def reported_set_keys() -> list[str]:
    """What a set's scores are reported as: each set metric and its companions."""
    return [key for e in METRICS if e.obj.scope == SET for key in (e.name, *e.obj.companions)]


def _unit_batch(pixels: np.ndarray) -> torch.Tensor:
    """(H, W) or (H, W, C) uint8 (or uint16) -> (1, C, H, W) float in [0, 1]."""
    top = 65535.0 if pixels.dtype == np.uint16 else 255.0
    array = torch.from_numpy(np.array(pixels, dtype=np.float32)) / top   # a copy: the input may be read-only
    return (array.unsqueeze(-1) if array.dim() == 2 else array).permute(2, 0, 1).unsqueeze(0)


def written_metrics(fake: np.ndarray, real: np.ndarray) -> dict[str, float]:
    """Every per-image metric of ``METRICS`` for two images as they are stored ((H, W) or
    (H, W, C) uint8)."""
    if fake.shape != real.shape:
        raise ValueError(f"metrics need images of one shape, got {fake.shape} and {real.shape}")
    f, r = _unit_batch(fake), _unit_batch(real)
    return {e.name: e.obj.compute(f, r) for e in METRICS if e.obj.scope == IMAGE}


def image_metrics(fake: torch.Tensor, real: torch.Tensor) -> dict[str, float]:
    """The metrics of two (C, H, W) images in [-1, 1], through the 8-bit rounding of a PNG."""
    return written_metrics(to_uint8(fake), to_uint8(real))


def mean_metrics(rows: list[dict[str, float]]) -> dict[str, float]:
    if not rows:
        return {}
    return {key: sum(r[key] for r in rows) / len(rows) for key in rows[0]}


def fid_batch(images: Sequence[np.ndarray]) -> torch.Tensor:
    """Written images ((H, W[, C]), uint8 or uint16) as one (N, C, H, W) batch on the 0..255
    scale the FID extractor reads: 16-bit values divided by 257 (65535 -> 255)."""
    batch = torch.from_numpy(np.stack([np.atleast_3d(x) for x in images]).astype(np.float32)).permute(0, 3, 1, 2)
    return batch / 257.0 if images and images[0].dtype == np.uint16 else batch


def set_metrics(fakes: Sequence[np.ndarray], reals: Sequence[np.ndarray]) -> dict[str, float]:
    """FID and KID (mean and spread over subsets) of the written fake set against the written
    real set (reporting/fid.py), for ``test.py --fid``."""
    score = score_images(fid_batch(reals), fid_batch(fakes))
    return {**score.as_metrics(), "KID_subsets": score.kid_subsets, "KID_subset_size": score.kid_subset_size}


def readme_metric_table() -> str:
    """The README's table of metrics (``--best_metric`` spellings), from the registry."""
    rows = [f"| `{e.name.lower()}` | {e.obj.goal}{' (needs `--val_fid`)' if e.obj.scope == SET else ''} | "
            f"{'per image, averaged' if e.obj.scope == IMAGE else 'of the set'} |" for e in METRICS]
    return "\n".join(["| metric | better | scope |", "|---|---|---|", *rows])
