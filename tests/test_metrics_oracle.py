"""L1, PSNR and SSIM of test.py (reporting/metrics.py) against independent computations:
numpy for L1 and scikit-image's metrics for PSNR and SSIM, in float64."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from reporting.images import to_uint8
from reporting.metrics import PSNR_CAP_DB, image_metrics, written_metrics

FACADE = Path(__file__).resolve().parent / "fixtures" / "facades" / "test" / "1.jpg"
PAD = 5   # the radius of the 11-tap Gaussian window (sigma 1.5, truncated at 3.5 sigma)


def oracle(fake: np.ndarray, real: np.ndarray) -> dict[str, float]:
    """The three metrics of two uint8 images, computed without torch or torchmetrics.

    Our SSIM averages the SSIM map over the whole image, the window reflected at the borders
    (numpy's and torch's "reflect": the edge pixel is not repeated). scikit-image's default
    crops the border instead, so the images are padded here by the window radius and the map
    of the padded images is cropped back to the original pixels: inside that crop the window
    only ever touches the padding, never scikit-image's own border handling."""
    f, r = fake.astype(np.float64) / 255, real.astype(np.float64) / 255
    if f.ndim == 2:
        f, r = f[..., None], r[..., None]
    pad = ((PAD, PAD), (PAD, PAD), (0, 0))
    _, ssim_map = structural_similarity(np.pad(r, pad, mode="reflect"), np.pad(f, pad, mode="reflect"),
                                        data_range=1.0, channel_axis=2, gaussian_weights=True, sigma=1.5,
                                        use_sample_covariance=False, full=True)
    return {"L1": float(np.abs(f - r).mean()),
            "PSNR": float(peak_signal_noise_ratio(r, f, data_range=1.0)),
            "SSIM": float(ssim_map[PAD:-PAD, PAD:-PAD].mean())}


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
    assert ours["L1"] == pytest.approx(expected["L1"], abs=1e-6)
    assert ours["PSNR"] == pytest.approx(expected["PSNR"], abs=1e-3)
    assert ours["SSIM"] == pytest.approx(expected["SSIM"], abs=1e-4)
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
    for key, tol in (("L1", 1e-6), ("PSNR", 1e-3), ("SSIM", 1e-4)):
        assert ours[key] == pytest.approx(expected[key], abs=tol), key


def test_identical_images():
    _, real = _facade_pair()
    assert written_metrics(real, real) == {"L1": 0.0, "PSNR": PSNR_CAP_DB, "SSIM": pytest.approx(1.0, abs=1e-6)}


def test_images_of_different_shapes_are_refused():
    with pytest.raises(ValueError, match="one shape"):
        written_metrics(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 16, 3), np.uint8))
