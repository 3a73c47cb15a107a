"""The checkerboard measure (reporting/checkerboard.py) on synthetic images whose spectra are
known by hand, and benchmarks/fid_folders.py on two folders."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reporting.checkerboard import checkerboard_ratio, checkerboard_ratio_of_folders, stride2_share
from tests.clone_env import clone_env

ROOT = Path(__file__).resolve().parent.parent
H = W = 32
YY, XX = np.mgrid[0:H, 0:W]
CHECKERBOARD = np.where((YY + XX) % 2 == 0, 1.0, -1.0)   # all its energy at (H/2, W/2)
# A wave at 3/8 cycle per pixel along x: high-pass, and not a stride-2 frequency.
WAVE = np.cos(2 * np.pi * 3 / 8 * XX)
# A smooth picture: low frequencies only (below 1/4 cycle per pixel) plus a little of WAVE.
SMOOTH = 0.8 * np.cos(2 * np.pi * XX / W) + 0.5 * np.sin(2 * np.pi * 2 * YY / H) + 0.1 * WAVE


def test_a_pure_checkerboard_is_all_stride2() -> None:
    assert stride2_share(CHECKERBOARD) == pytest.approx(1.0)


def test_share_by_hand() -> None:
    # Power of a*cos at two bins (+-k) of (a*H*W/2)^2 each; of b*checkerboard at one bin (b*H*W)^2.
    a, b = 1.0, 0.5
    expected = b ** 2 / (b ** 2 + a ** 2 / 2)
    assert stride2_share(a * WAVE + b * CHECKERBOARD) == pytest.approx(expected)
    assert stride2_share(SMOOTH) == pytest.approx(0.0, abs=1e-20)


def test_checkerboard_added_to_smooth_images_raises_the_ratio() -> None:
    real = [SMOOTH + 0.01 * CHECKERBOARD, np.roll(SMOOTH, 3, axis=1) + 0.01 * CHECKERBOARD]
    assert checkerboard_ratio(real, real) == pytest.approx(1.0)
    faint, strong = ([x + amp * CHECKERBOARD for x in real] for amp in (0.05, 0.2))
    assert 1.0 < checkerboard_ratio(faint, real) < checkerboard_ratio(strong, real)
    # Colour images: the measure reads the mean over channels.
    rgb = [np.repeat(x[..., None], 3, axis=2) for x in real]
    assert checkerboard_ratio([np.repeat(x[..., None], 3, axis=2) for x in strong], rgb) == pytest.approx(
        checkerboard_ratio(strong, real))


def test_odd_sides_are_refused() -> None:
    with pytest.raises(ValueError, match="even sides"):
        stride2_share(np.zeros((31, 32)))


def _write(folder: Path, images: list[np.ndarray]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, x in enumerate(images):
        pixels = np.clip((x - x.min()) / (x.max() - x.min()) * 255, 0, 255).round().astype(np.uint8)
        paths.append(folder / f"{i}.png")
        Image.fromarray(np.repeat(pixels[..., None], 3, axis=2)).save(paths[-1])
    return paths


def test_folders_as_written(tmp_path: Path) -> None:
    real = _write(tmp_path / "real", [SMOOTH + 0.05 * CHECKERBOARD, np.roll(SMOOTH, 5, axis=0) + 0.05 * CHECKERBOARD])
    fake = _write(tmp_path / "fake", [SMOOTH + 0.5 * CHECKERBOARD, np.roll(SMOOTH, 5, axis=0) + 0.5 * CHECKERBOARD])
    # By hand (as test_share_by_hand): real 0.05^2 / (0.05^2 + 0.1^2/2) = 1/3 of the high band,
    # fake 0.5^2 / (0.5^2 + 0.1^2/2); the 8-bit files round a little.
    expected = (0.25 / (0.25 + 0.005)) / (0.0025 / (0.0025 + 0.005))
    assert checkerboard_ratio_of_folders(fake, real) == pytest.approx(expected, rel=0.02)
    assert checkerboard_ratio_of_folders(real, real) == pytest.approx(1.0)


def test_fid_folders_scores_two_folders_and_refuses_a_bad_one(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    _write(tmp_path / "a", [SMOOTH + rng.normal(0, 0.1, SMOOTH.shape) for _ in range(3)])
    _write(tmp_path / "b", [SMOOTH + rng.normal(0, 1.0, SMOOTH.shape) for _ in range(3)])
    script = str(ROOT / "benchmarks" / "fid_folders.py")
    done = subprocess.run([sys.executable, script, str(tmp_path / "a"), str(tmp_path / "b")],
                          capture_output=True, text=True, check=True, env=clone_env())
    record = json.loads(done.stdout)
    assert record["real_images"] == record["fake_images"] == 3 and record["FID"] > 0
    assert record["KID_subset_size"] == 2
    bad = subprocess.run([sys.executable, script, str(tmp_path / "a"), str(tmp_path / "missing")],
                         capture_output=True, text=True, env=clone_env())
    assert bad.returncode == 1 and bad.stderr.strip().count("\n") == 0 and "not a folder" in bad.stderr
