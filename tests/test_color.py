"""RGB <-> Lab against scikit-image, and the colorization normalization helpers."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import color as skcolor

from data.color import (lab_tensors_to_rgb, lab_to_rgb, normalize_ab, normalize_l, rgb_to_lab)


def _random_rgb(n: int = 2, size: int = 16) -> torch.Tensor:
    rgb = torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(0))
    # Include the extremes and the dark linear segment of the sRGB curve.
    rgb[0, :, 0, 0] = 0.0
    rgb[0, :, 0, 1] = 1.0
    rgb[0, :, 0, 2] = 0.02
    return rgb


def _sk_lab(rgb: torch.Tensor) -> np.ndarray:
    return np.stack([skcolor.rgb2lab(img.permute(1, 2, 0).double().numpy()) for img in rgb])


def test_rgb_to_lab_matches_skimage_batched_and_single() -> None:
    rgb = _random_rgb()
    expected = _sk_lab(rgb)
    ours = rgb_to_lab(rgb).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(ours, expected, atol=1e-3)
    single = rgb_to_lab(rgb[1]).permute(1, 2, 0).numpy()
    np.testing.assert_allclose(single, expected[1], atol=1e-3)


def test_lab_to_rgb_matches_skimage_including_out_of_gamut() -> None:
    g = torch.Generator().manual_seed(1)
    lab = torch.empty(2, 3, 12, 12)
    lab[:, 0] = torch.rand(2, 12, 12, generator=g) * 100
    lab[:, 1:] = torch.rand(2, 2, 12, 12, generator=g) * 220 - 110   # many colours out of gamut
    lab[0, :, 0, 0] = torch.tensor([0.0, 0.0, 100.0])                # negative z, clipped by both
    ours = lab_to_rgb(lab).permute(0, 2, 3, 1).numpy()
    with pytest.warns(UserWarning):
        expected = np.stack([skcolor.lab2rgb(x.permute(1, 2, 0).double().numpy()) for x in lab])
    np.testing.assert_allclose(ours, expected, atol=1e-3)


def test_round_trip_and_dtype() -> None:
    rgb = _random_rgb()
    back = lab_to_rgb(rgb_to_lab(rgb))
    assert back.dtype == torch.float32
    torch.testing.assert_close(back, rgb, atol=1e-4, rtol=0)
    assert rgb_to_lab(rgb.double()).dtype == torch.float64


def test_normalized_lab_to_display_rgb() -> None:
    rgb = _random_rgb(1, 8)
    lab = rgb_to_lab(rgb)
    l_norm, ab_norm = normalize_l(lab[:, :1]), normalize_ab(lab[:, 1:])
    assert l_norm.min() >= -1 and l_norm.max() <= 1
    shown = lab_tensors_to_rgb(l_norm, ab_norm)
    assert shown.shape == (1, 3, 8, 8)
    torch.testing.assert_close(shown, rgb * 2 - 1, atol=2e-4, rtol=0)
    # Unbatched inputs and a generator output that strays outside [-1, 1] still give valid RGB.
    wild = lab_tensors_to_rgb(torch.full((1, 4, 4), 1.5), torch.full((2, 4, 4), -3.0))
    assert wild.shape == (3, 4, 4) and wild.min() >= -1 and wild.max() <= 1


def test_rejects_wrong_shape() -> None:
    with pytest.raises(ValueError, match="expected"):
        rgb_to_lab(torch.rand(4, 8, 8))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_runs_on_cuda() -> None:
    rgb = _random_rgb()
    torch.testing.assert_close(rgb_to_lab(rgb.cuda()).cpu(), rgb_to_lab(rgb), atol=1e-3, rtol=0)
