"""The rule that judges the README's quality table against the reference, by hand computation."""
import math

import pytest

from benchmarks.quality_verdict import verdict

REFERENCE = {"FID": [300.0, 320.0, 340.0], "PSNR": [13.0, 13.2, 13.4], "SSIM": [0.20, 0.21, 0.22]}


def test_fid_ratio_and_shortfall_by_hand():
    ours = {"FID": [240.0, 250.0, 260.0], "PSNR": [12.9, 13.0, 13.1], "SSIM": [0.22, 0.23, 0.24]}
    v = verdict(ours, REFERENCE)
    assert v.fid_ratio == pytest.approx(250.0 / 320.0)
    # PSNR: reference mean 13.2, ours 13.0, spread = max(sd 0.2, sd 0.1) = 0.2 -> one spread below.
    assert v.shortfall["PSNR"] == pytest.approx(1.0)
    assert v.shortfall["SSIM"] == pytest.approx(-2.0)     # 0.02 above, spread 0.01
    assert v.wins


def test_fid_must_be_15_percent_better():
    ours = {"FID": [275.0, 275.0, 275.0], "PSNR": [13.2] * 3, "SSIM": [0.21] * 3}
    v = verdict(ours, REFERENCE)
    assert v.fid_ratio == pytest.approx(275 / 320) and v.fid_ratio > 0.85
    assert not v.wins


def test_pixel_measures_worse_beyond_the_spread_lose():
    ours = {"FID": [200.0] * 3, "PSNR": [12.5, 12.6, 12.7], "SSIM": [0.21] * 3}
    v = verdict(ours, REFERENCE)
    assert v.shortfall["PSNR"] == pytest.approx((13.2 - 12.6) / 0.2)
    assert not v.wins and "PSNR 3.00 spreads below" in v.summary()


def test_no_spread_means_any_loss_counts():
    one = {"FID": [200.0], "PSNR": [13.0], "SSIM": [0.3]}
    v = verdict(one, {"FID": [300.0], "PSNR": [13.1], "SSIM": [0.2]})
    assert math.isinf(v.shortfall["PSNR"]) and not v.wins
