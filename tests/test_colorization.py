"""Colorization trains with pix2pix's loop, and test.py writes RGB pages with colour metrics."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import test as test_driver
import train as train_driver
from models import MODELS
from data.color import lab_to_rgb, normalize_ab, normalize_l, rgb_to_lab
from engine.distributed import Runtime

SIDE = 32


def write_photos(folder: Path, count: int) -> list[Path]:
    """Smooth colour images: colorization needs chroma, and smooth images survive JPEG-free PNG."""
    folder.mkdir(parents=True)
    yy, xx = np.mgrid[0:SIDE, 0:SIDE] / (SIDE - 1)
    paths = []
    for i in range(count):
        rgb = np.stack([xx, yy, (xx + yy + i / count) % 1.0], axis=-1)
        path = folder / f"photo{i}.png"
        Image.fromarray((rgb * 255).round().astype(np.uint8)).save(path)
        paths.append(path)
    return paths


def tiny_args(tmp: Path) -> list[str]:
    return ["--dataroot", str(tmp / "photos"), "--name", "color", "--checkpoints_dir", str(tmp / "ck"),
            "--model", "colorization", "--gpu_ids", "-1", "--num_threads", "0", "--seed", "0"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("colorization")
    write_photos(tmp / "photos" / "train", 4)
    write_photos(tmp / "photos" / "test", 2)
    rc = train_driver.main(tiny_args(tmp) + [
        "--netG", "resnet_6blocks", "--ngf", "4", "--ndf", "4", "--preprocess", "none",
        "--batch_size", "2", "--max_steps", "2", "--display_id", "0", "--no_html"])
    assert rc == 0
    return tmp


def test_training_saves_a_one_to_two_channel_generator(trained: Path) -> None:
    ckpt = torch.load(trained / "ck" / "color" / "latest_net_G.pt", weights_only=True)
    assert ckpt["options"]["model"] == "colorization"
    first_conv = next(v for k, v in ckpt["net_G"].items() if v.dim() == 4)
    last_bias = [v for k, v in ckpt["net_G"].items() if k.endswith("bias")][-1]
    assert first_conv.shape[1] == 1 and last_bias.shape == (2,)


def test_test_py_writes_rgb_pages_and_colour_metrics(trained: Path) -> None:
    results = trained / "results"
    rc = test_driver.main(tiny_args(trained) + ["--results_dir", str(results), "--preprocess", "none",
                                                "--netG", "resnet_6blocks", "--ngf", "4"])
    assert rc == 0
    page = results / "color" / "test_latest"
    assert (page / "index.html").is_file()
    for stem in ("photo0", "photo1"):
        fake = Image.open(page / "images" / f"{stem}_fake_B.png")
        real = Image.open(page / "images" / f"{stem}_real_B.png")
        gray = Image.open(page / "images" / f"{stem}_real_A.png")
        assert fake.mode == real.mode == "RGB" and gray.mode == "L"
        assert fake.size == real.size == gray.size == (SIDE, SIDE)
        # real_B is the photo rebuilt from its own L and ab: the photo itself, up to rounding.
        photo = np.asarray(Image.open(trained / "photos" / "test" / f"{stem}.png"), dtype=np.int16)
        assert np.abs(np.asarray(real, dtype=np.int16) - photo).max() <= 2
    metrics = json.loads((page / "metrics.json").read_text())
    assert {"PSNR", "SSIM"} <= set(metrics["mean"])
    # fake_B and real_B share L, so PSNR is finite but the untrained colours are off.
    assert 5.0 < metrics["mean"]["PSNR"] < 100.0


def test_visuals_rebuild_rgb_from_input_lightness() -> None:
    opt = argparse.Namespace(netG="resnet_6blocks", ngf=4, norm="batch", input_nc=1, output_nc=2, no_dropout=True,
                             init_type="normal", init_gain=0.02, is_train=False, amp="none")
    model = MODELS.get("colorization")(opt, Runtime(torch.device("cpu")))
    rgb = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    lab = rgb_to_lab(rgb)
    model.set_input({"A": normalize_l(lab[:, :1]), "B": normalize_ab(lab[:, 1:]), "A_paths": ["a", "b"]})
    model.test()
    visuals = model.current_visuals()
    assert visuals["real_A"].shape == (2, 1, 8, 8)
    assert visuals["fake_B"].shape == visuals["real_B"].shape == (2, 3, 8, 8)
    assert torch.allclose(visuals["real_B"], rgb * 2 - 1, atol=1e-4)
    gray = lab_to_rgb(torch.cat([lab[:, :1], torch.zeros_like(lab[:, 1:])], 1))
    assert torch.allclose(visuals["real_A"], gray[:, :1] * 2 - 1, atol=1e-5)


def test_wrong_channel_counts_are_refused() -> None:
    opt = argparse.Namespace(netG="resnet_6blocks", ngf=4, norm="batch", input_nc=3, output_nc=3, no_dropout=True,
                             init_type="normal", init_gain=0.02, is_train=False)
    with pytest.raises(ValueError, match="--input_nc 1 --output_nc 2"):
        MODELS.get("colorization")(opt, Runtime(torch.device("cpu")))
