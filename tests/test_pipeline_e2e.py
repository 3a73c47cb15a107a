"""train.py -> test.py end to end on tiny generated data (G learns a negation map), exact
resume, and bad input."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import test as test_driver
import train as train_driver
from reporting.metrics import IMAGE, metric_names
from tests.pipeline_helpers import FIXTURE_FACADES, make_aligned_dataset, tiny_args

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_aligned_dataset(tmp_path_factory.mktemp("data"), {"train": 6, "test": 3})


def load(path: Path) -> dict:
    return torch.load(path, weights_only=True)


def test_train_then_test(tiny_data: Path, tmp_path: Path) -> None:
    args = tiny_args(tiny_data, tmp_path / "ck")
    assert train_driver.main(args + ["--batch_size", "2", "--n_epochs", "1", "--n_epochs_decay", "1",
                                     "--print_freq", "2", "--display_freq", "2", "--update_html_freq", "2"]) == 0
    exp = tmp_path / "ck" / "tiny"
    for name in ("latest.pt", "latest_net_G.pt", "2.pt", "loss_log.jsonl", "train_opt.txt", "web/index.html"):
        assert (exp / name).is_file(), name
    ckpt = load(exp / "latest.pt")
    assert set(ckpt) >= {"nets", "optimizers", "schedulers", "state", "rng", "options"}
    assert ckpt["state"]["step"] == 6 and ckpt["state"]["epoch"] == 3 and ckpt["options"]["netG"] == "resnet_6blocks"
    records = [json.loads(line) for line in (exp / "loss_log.jsonl").read_text().splitlines()]
    assert records and set(records[0]["losses"]) == {"G_GAN", "G_L1", "D_real", "D_fake"}

    results = tmp_path / "results"
    # The architecture comes from the checkpoint: no --netG/--ngf needed at test time.
    assert test_driver.main(["--dataroot", str(tiny_data), "--checkpoints_dir", str(tmp_path / "ck"), "--name", "tiny",
                             "--results_dir", str(results), "--load_size", "32", "--crop_size", "32",
                             "--num_threads", "0", "--gpu_ids", "-1"]) == 0
    page = results / "tiny" / "test_latest"
    for stem in ("000", "001", "002"):
        for kind in ("real_A", "fake_B", "real_B"):
            assert (page / "images" / f"{stem}_{kind}.png").is_file()
    metrics = json.loads((page / "metrics.json").read_text())
    assert set(metrics["mean"]) == set(metric_names(IMAGE)) and len(metrics["images"]) == 3
    html = (page / "index.html").read_text()
    assert "000_fake_B.png" in html and "PSNR" in html


def make_smooth_negation_dataset(root: Path, counts: dict[str, int], size: int = 32, seed: int = 0) -> Path:
    """A|B pairs with B = 255 - A and A a smooth random colour field (4x4 noise resized
    bicubically): learnable in a few dozen steps by a network that must pass the image
    through an 8x8 bottleneck (the ResNet generator at 32 px)."""
    rng = np.random.default_rng(seed)
    for phase, n in counts.items():
        (root / phase).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            noise = Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8))
            a = np.asarray(noise.resize((size, size), Image.Resampling.BICUBIC))
            Image.fromarray(np.concatenate([a, 255 - a], axis=1)).save(root / phase / f"{i:03d}.png")
    return root


def test_generator_learns_the_negation_map(tmp_path: Path) -> None:
    """After 100 steps G's test L1 is below 0.15, where the best constant image (each channel at
    its median, the image that minimizes L1 without looking at A) scores about 0.2 on these
    pairs: G maps its input, it does not just paint the average. Measured: 0.115-0.12 (seeds 0, 3)."""
    data = make_smooth_negation_dataset(tmp_path / "data", {"train": 8, "test": 4})
    args = tiny_args(data, tmp_path / "ck") + ["--ngf", "8", "--batch_size", "2", "--lr", "0.002",
                                               "--n_epochs", "15", "--n_epochs_decay", "10", "--print_freq", "1000"]
    assert train_driver.main(args) == 0
    assert test_driver.main(["--dataroot", str(data), "--checkpoints_dir", str(tmp_path / "ck"), "--name", "tiny",
                             "--results_dir", str(tmp_path / "r"), "--load_size", "32", "--crop_size", "32",
                             "--num_threads", "0", "--gpu_ids", "-1"]) == 0
    learned = json.loads((tmp_path / "r" / "tiny" / "test_latest" / "metrics.json").read_text())["mean"]["L1"]
    constant = []
    for path in sorted((data / "test").iterdir()):
        b = np.asarray(Image.open(path), dtype=np.float64)[:, 32:] / 255
        constant.append(np.abs(b - np.median(b, axis=(0, 1))).mean())
    assert float(np.mean(constant)) > 0.18   # the bound below is well under "no learning"
    assert learned < 0.15, f"G did not learn the negation map: test L1 {learned:.3f}"


@pytest.mark.parametrize("stop_after", [1, 3, 4])  # mid-epoch, the end of a partial batch, an epoch boundary
def test_interrupted_and_resumed_run_equals_uninterrupted(tiny_data: Path, tmp_path: Path, stop_after: int) -> None:
    common = ["--batch_size", "2", "--n_epochs", "1", "--n_epochs_decay", "1", "--print_freq", "100", "--seed", "7"]
    straight = tiny_args(tiny_data, tmp_path / "a") + common
    assert train_driver.main(straight) == 0
    split = tiny_args(tiny_data, tmp_path / "b") + common
    assert train_driver.main(split + ["--max_steps", str(stop_after)]) == 0
    assert load(tmp_path / "b" / "tiny" / "latest.pt")["state"]["step"] == stop_after
    assert train_driver.main(split + ["--continue_train"]) == 0
    a, b = load(tmp_path / "a" / "tiny" / "latest.pt"), load(tmp_path / "b" / "tiny" / "latest.pt")
    assert a["state"] == b["state"]
    for net in ("G", "D"):
        for key, value in a["nets"][net].items():
            assert torch.equal(value, b["nets"][net][key]), f"{net}.{key}"


def test_fresh_run_does_not_overwrite_existing_checkpoints(tiny_data: Path, tmp_path: Path, capsys) -> None:
    args = tiny_args(tiny_data, tmp_path / "ck") + ["--max_steps", "1"]
    assert train_driver.main(args) == 0
    before = (tmp_path / "ck" / "tiny" / "latest.pt").read_bytes()
    assert train_driver.main(args) == 1
    assert "already holds checkpoints" in capsys.readouterr().err
    assert (tmp_path / "ck" / "tiny" / "latest.pt").read_bytes() == before
    assert train_driver.main(args + ["--overwrite"]) == 0


def test_architecture_mismatch_names_the_option(tiny_data: Path, tmp_path: Path, capsys) -> None:
    assert train_driver.main(tiny_args(tiny_data, tmp_path / "ck") + ["--max_steps", "1", "--norm", "instance"]) == 0
    code = test_driver.main(["--dataroot", str(tiny_data), "--checkpoints_dir", str(tmp_path / "ck"), "--name", "tiny",
                             "--norm", "batch", "--netG", "resnet_6blocks", "--crop_size", "32", "--gpu_ids", "-1",
                             "--results_dir", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip()
    assert code == 1 and "checkpoint was trained with --norm instance, you asked for --norm batch" in err
    assert len(err.splitlines()) == 1
    resumed = train_driver.main(tiny_args(tiny_data, tmp_path / "ck") + ["--continue_train", "--norm", "batch"])
    assert resumed == 1 and "--norm instance" in capsys.readouterr().err


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=180)


@pytest.mark.parametrize("make_bad, expected", [
    (lambda root: None, "does not exist"),
    (lambda root: (root / "train").mkdir(parents=True), "no usable images"),
    (lambda root: ((root / "train").mkdir(parents=True), (root / "train" / "x.png").write_bytes(b"")), "x.png"),
])
def test_bad_data_gives_one_line_without_traceback(tmp_path: Path, make_bad, expected: str) -> None:
    root = tmp_path / "data"
    make_bad(root)
    result = _cli("train.py", *tiny_args(root, tmp_path / "ck"), "--max_steps", "1")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], lines


def test_real_facades_end_to_end(tmp_path: Path) -> None:
    base = ["--dataroot", str(FIXTURE_FACADES), "--checkpoints_dir", str(tmp_path / "ck"), "--name", "facades",
            "--direction", "BtoA", "--max_dataset_size", "4", "--ngf", "8", "--ndf", "8", "--num_threads", "0",
            "--gpu_ids", "-1"]
    assert train_driver.main(base + ["--display_id", "0", "--max_steps", "8", "--print_freq", "4"]) == 0
    records = [json.loads(line) for line in (tmp_path / "ck" / "facades" / "loss_log.jsonl").read_text().splitlines()]
    assert len(records) == 2 and all(r["losses"]["G_L1"] > 0 for r in records)
    assert test_driver.main(base + ["--results_dir", str(tmp_path / "r"), "--num_test", "3"]) == 0
    metrics = json.loads((tmp_path / "r" / "facades" / "test_latest" / "metrics.json").read_text())
    assert len(metrics["images"]) == 3 and 0 < metrics["mean"]["SSIM"] < 1
    real = (tmp_path / "r" / "facades" / "test_latest" / "images")
    assert Image.open(next(real.glob("*_fake_B.png"))).size == (256, 256)


def test_overwrite_starts_a_new_loss_log_and_page(tiny_data: Path, tmp_path: Path) -> None:
    args = tiny_args(tiny_data, tmp_path / "ck") + ["--max_steps", "2", "--print_freq", "1", "--display_freq", "1",
                                                    "--update_html_freq", "1"]
    assert train_driver.main(args) == 0
    assert train_driver.main(args + ["--overwrite", "--max_steps", "1"]) == 0
    exp = tmp_path / "ck" / "tiny"
    assert len((exp / "loss_log.jsonl").read_text().splitlines()) == 1
    assert load(exp / "latest.pt")["state"]["step"] == 1
