"""The per-image metrics of test.py (reporting/metrics.py) against independent computations:
numpy for L1 and scikit-image's metrics for PSNR and SSIM, in float64. Every registered metric
has an oracle: a row of ``ORACLES`` here (per image) or an oracle test of reporting/fid.py (of
a set), and a new metric without one fails ``test_every_registered_metric_has_an_oracle``."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from reporting.images import to_uint8
from reporting.fid import FidScore
from reporting.metrics import (IMAGE, METRICS, PSNR_CAP_DB, SET, image_metrics, metric_names,
                                reported_set_keys, written_metrics)
from tests import test_fid

FACADE = Path(__file__).resolve().parent / "fixtures" / "facades" / "test" / "1.jpg"
PAD = 5   # the radius of the 11-tap Gaussian window (sigma 1.5, truncated at 3.5 sigma)


def _unit(fake: np.ndarray, real: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    f, r = fake.astype(np.float64) / 255, real.astype(np.float64) / 255
    return (f[..., None], r[..., None]) if f.ndim == 2 else (f, r)


def _l1(fake: np.ndarray, real: np.ndarray) -> float:
    f, r = _unit(fake, real)
    return float(np.abs(f - r).mean())


def _psnr(fake: np.ndarray, real: np.ndarray) -> float:
    f, r = _unit(fake, real)
    return float(peak_signal_noise_ratio(r, f, data_range=1.0))


def _ssim(fake: np.ndarray, real: np.ndarray) -> float:
    """Our SSIM averages the SSIM map over the whole image, the window reflected at the borders
    (numpy's and torch's "reflect": the edge pixel is not repeated). scikit-image's default
    crops the border instead, so the images are padded here by the window radius and the map
    of the padded images is cropped back to the original pixels: inside that crop the window
    only ever touches the padding, never scikit-image's own border handling."""
    f, r = _unit(fake, real)
    pad = ((PAD, PAD), (PAD, PAD), (0, 0))
    _, ssim_map = structural_similarity(np.pad(r, pad, mode="reflect"), np.pad(f, pad, mode="reflect"),
                                        data_range=1.0, channel_axis=2, gaussian_weights=True, sigma=1.5,
                                        use_sample_covariance=False, full=True)
    return float(ssim_map[PAD:-PAD, PAD:-PAD].mean())


# One row per per-image metric: (oracle on two uint8 images, absolute tolerance).
ORACLES = {"L1": (_l1, 1e-6), "PSNR": (_psnr, 1e-3), "SSIM": (_ssim, 1e-4)}
# The set metrics' oracle tests, in tests/test_fid.py (by reference: a renamed test breaks this).
SET_ORACLES = {"FID": test_fid.test_frechet_distance_matches_the_scipy_formula,
               "KID": test_fid.test_kid_is_the_unbiased_polynomial_mmd_written_out}


def oracle(fake: np.ndarray, real: np.ndarray) -> dict[str, float]:
    """Every per-image metric of two uint8 images, computed without torch or torchmetrics."""
    return {name: fn(fake, real) for name, (fn, _) in ORACLES.items()}


def test_every_registered_metric_has_an_oracle() -> None:
    assert set(ORACLES) == set(metric_names(IMAGE))
    assert set(SET_ORACLES) == set(metric_names(SET))
    assert all(METRICS.get(name).compute is not None for name in ORACLES)


def test_set_scores_are_reported_under_the_registered_names() -> None:
    assert list(FidScore(1.0, 2.0, 3.0, 4, 5, 6).as_metrics()) == reported_set_keys() == ["FID", "KID", "KID_std"]


def _facade_pair() -> tuple[np.ndarray, np.ndarray]:
    """A real photo and a blurred, noisy, brightened copy of it."""
    photo = Image.open(FACADE).convert("RGB").crop((0, 0, 256, 256))
    rng = np.random.default_rng(0)
    degraded = np.asarray(photo.filter(ImageFilter.GaussianBlur(1.2)), dtype=np.float64)
    degraded = np.clip(degraded * 1.05 + 6 + rng.normal(0, 6, degraded.shape), 0, 255).round().astype(np.uint8)
    return degraded, np.asarray(photo)


def _random_pair(shape: tuple[int, ...], seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    real = rng.integers(0, 256, shape)
    fake = np.clip(real + rng.normal(0, 40, shape), 0, 255).round()
    return fake.astype(np.uint8), real.astype(np.uint8)


PAIRS = {
    "facade photo, 256x256 RGB": _facade_pair,
    "random RGB, 40x56": lambda: _random_pair((40, 56, 3), 1),
    "random gray, 33x47": lambda: _random_pair((33, 47), 2),
}


@pytest.mark.parametrize("pair", sorted(PAIRS))
def test_metrics_match_numpy_and_scikit_image(pair: str):
    fake, real = PAIRS[pair]()
    ours, expected = written_metrics(fake, real), oracle(fake, real)
    assert set(ours) == set(ORACLES)
    for key, (_, tol) in ORACLES.items():
        assert ours[key] == pytest.approx(expected[key], abs=tol), key
    assert 0 < expected["SSIM"] < 0.99 and 5 < expected["PSNR"] < 60   # a pair that tells values apart


def test_tensor_metrics_are_those_of_the_8_bit_files():
    """image_metrics of [-1, 1] tensors = the oracle on the PNG values (rounded to 8 bits)."""
    g = torch.Generator().manual_seed(3)
    real = torch.rand(3, 24, 32, generator=g) * 2 - 1
    fake = (real + 0.2 * torch.randn(3, 24, 32, generator=g)).clamp(-1, 1)
    f8 = np.rint((fake.double().numpy() + 1) * 127.5).astype(np.uint8).transpose(1, 2, 0)
    r8 = np.rint((real.double().numpy() + 1) * 127.5).astype(np.uint8).transpose(1, 2, 0)
    assert np.array_equal(to_uint8(fake), f8)
    ours, expected = image_metrics(fake, real), oracle(f8, r8)
    for key, (_, tol) in ORACLES.items():
        assert ours[key] == pytest.approx(expected[key], abs=tol), key


def test_identical_images():
    _, real = _facade_pair()
    assert written_metrics(real, real) == {"L1": 0.0, "PSNR": PSNR_CAP_DB, "SSIM": pytest.approx(1.0, abs=1e-6)}


def test_images_of_different_shapes_are_refused():
    with pytest.raises(ValueError, match="one shape"):
        written_metrics(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 16, 3), np.uint8))
