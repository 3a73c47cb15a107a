"""What train.py and test.py refuse before training starts, and what a file whose pixels turn out
bad mid-run costs (audit of the data path: C1, C2, C4, C5, K5).

Each refusal is checked as a user sees it: exit status, one line on stderr naming the culprit
and the option to change, no traceback, and no experiment folder written.
"""
from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

import test as test_script
import train as train_script
from models.networks.multiscale import smallest_logit_side
from tests.shard_helpers import make_shard_set

TINY = ["--netG", "unet", "--num_downs", "5", "--ngf", "8", "--ndf", "8", "--load_size", "32", "--crop_size", "32",
        "--display_id", "0", "--num_threads", "0", "--gpu_ids", "-1", "--amp", "none", "--no_html"]


def run(driver, argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    try:
        code = driver.main(argv)
    except SystemExit as exit_:
        code = exit_.code
    return code, capsys.readouterr().err


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def train_args(root: Path, ckpt: Path, name: str, *extra: str) -> list[str]:
    return ["--dataroot", str(root), "--checkpoints_dir", str(ckpt), "--name", name, *TINY, *extra]


def aligned_set(root: Path, n: int, side: int = 32, phase: str = "train") -> Path:
    rng = np.random.default_rng(3)
    (root / phase).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        coarse = rng.integers(0, 256, size=(4, 8, 3), dtype=np.uint8)
        Image.fromarray(coarse).resize((2 * side, side), Image.BILINEAR).save(root / phase / f"{i}.png")
    return root


def paired_set(root: Path, sizes: list[tuple[int, int]], phase: str = "train") -> Path:
    """Two folders of 8-bit RGB pairs, one pair per (height, width)."""
    rng = np.random.default_rng(4)
    for side in "AB":
        (root / side / phase).mkdir(parents=True, exist_ok=True)
        for i, (h, w) in enumerate(sizes):
            Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(root / side / phase / f"p{i}.png")
    return root


# -- C1: a URL with a mode that reads folders --------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["aligned", "paired", "single", "colorization"])
def test_url_dataroot_needs_shards_mode(mode: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    extra = ["--model", "colorization", "--input_nc", "1", "--output_nc", "2"] if mode == "colorization" else []
    argv = train_args("http://127.0.0.1:9/facades", tmp_path, "url", "--dataset_mode", mode, *extra)  # type: ignore[arg-type]
    code, err = run(train_script, argv, capsys)
    line = one_line(err)
    assert code != 0
    if mode == "single":   # refused before the dataroot is looked at: no targets to train on
        assert "--dataset_mode single" in line and "no targets" in line
    else:
        assert "http://127.0.0.1:9/facades" in line and "--dataset_mode shards" in line
    assert not (tmp_path / "url").exists()


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoints_dir holding 'exp', a tiny aligned run of one step."""
    data = aligned_set(tmp_path_factory.mktemp("data"), 2)
    ckpt = tmp_path_factory.mktemp("ckpt")
    assert train_script.main(train_args(data, ckpt, "exp", "--max_steps", "1")) == 0
    return ckpt


@pytest.mark.parametrize("mode", ["aligned", "single"])
def test_url_dataroot_in_test_py(mode: str, trained: Path, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run(test_script, ["--dataroot", "http://127.0.0.1:9/facades", "--checkpoints_dir", str(trained),
                                  "--name", "exp", "--gpu_ids", "-1", "--num_threads", "0", "--dataset_mode", mode,
                                  "--results_dir", str(tmp_path / "results")], capsys)
    line = one_line(err)
    assert code == 1 and "--dataset_mode shards" in line and "http://127.0.0.1:9/facades" in line
    assert not (tmp_path / "results").exists()


# -- K5: a two-folder layout read without --dataset_mode paired -----------------------------------------------

def test_paired_layout_without_paired_mode_hints(trained: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    pairs = paired_set(tmp_path / "my_pairs", [(32, 32)], phase="test")
    code, err = run(test_script, ["--dataroot", str(pairs), "--checkpoints_dir", str(trained), "--name", "exp",
                                  "--gpu_ids", "-1", "--num_threads", "0",
                                  "--results_dir", str(tmp_path / "results")], capsys)
    line = one_line(err)
    assert code == 1 and "no 'test' folder" in line and "--dataset_mode paired" in line
    # The same layout read as what it is works (the hint is right).
    assert test_script.main(["--dataroot", str(pairs), "--checkpoints_dir", str(trained), "--name", "exp",
                             "--gpu_ids", "-1", "--num_threads", "0", "--dataset_mode", "paired",
                             "--results_dir", str(tmp_path / "results")]) == 0


def test_missing_phase_without_paired_layout_has_no_hint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    code, err = run(train_script, train_args(tmp_path / "empty", tmp_path, "x"), capsys)
    line = one_line(err)
    assert code == 1 and "no 'train' folder" in line and "paired" not in line


# -- C2: training needs targets --------------------------------------------------------------------------------

def test_single_mode_refused_by_train(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = aligned_set(tmp_path / "data", 2)
    code, err = run(train_script, train_args(data, tmp_path / "ckpt", "s", "--dataset_mode", "single"), capsys)
    line = one_line(err)
    assert code == 2 and "--dataset_mode single" in line and "aligned, paired, colorization" in line
    assert not (tmp_path / "ckpt").exists()


def test_single_mode_shards_refused_by_train(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = aligned_set(tmp_path / "data", 2)
    shards = make_shard_set(data, tmp_path / "shards", mode="single")
    code, err = run(train_script, train_args(shards, tmp_path / "ckpt", "s", "--dataset_mode", "shards"), capsys)
    line = one_line(err)
    assert code == 1 and str(shards) in line and "single" in line and "no targets" in line
    assert not (tmp_path / "ckpt").exists()
    # Shards of a mode with targets train (the check looks at the mode, not at shards as such).
    aligned = make_shard_set(data, tmp_path / "aligned_shards")
    assert train_script.main(train_args(aligned, tmp_path / "ckpt", "a", "--dataset_mode", "shards",
                                        "--max_steps", "1")) == 0


# -- C4: samples too small for the networks ---------------------------------------------------------------------

PAD = ["--dataset_mode", "paired", "--preprocess", "pad", "--max_steps", "1"]


def first_fitting(n_layers: int, num_d: int, multiple: int) -> int:
    """The hand formula of a PatchGAN's coarsest logit map: the smallest multiple of G's size
    multiple that leaves one logit (an oracle independent of the probe)."""
    return next(s for s in itertools.count(multiple, multiple) if smallest_logit_side(s, n_layers, num_d) >= 1)


def test_readme_sizes_too_small_for_two_scale_discriminator(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    data = paired_set(tmp_path / "own", [(45, 72), (37, 50)])
    argv = train_args(data, tmp_path / "ckpt", "m", *PAD, "--netG", "resnet_6blocks", "--netD", "multiscale",
                      "--num_D", "2")
    code, err = run(train_script, argv, capsys)
    line = one_line(err)
    needed = first_fitting(3, 2, 4)
    assert needed == 48
    assert code == 1
    assert "p1.png: 50x37 px (52x40 after --preprocess pad)" in line
    assert f"at least {needed}x{needed} px" in line and "--num_D" in line and "--n_layers_D" in line
    assert not (tmp_path / "ckpt").exists()
    # What the line proposes works: one scale fits these sizes, and so does the size it names.
    assert train_script.main(argv[:-2] + ["--num_D", "1"]) == 0
    fits = paired_set(tmp_path / "fits", [(needed, needed)])
    assert train_script.main(train_args(fits, tmp_path / "ckpt", "m2", *PAD, "--netG", "resnet_6blocks",
                                        "--netD", "multiscale", "--num_D", "2")) == 0


def test_tiny_pair_too_small_for_basic_discriminator(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = paired_set(tmp_path / "tiny", [(10, 12)])
    for preprocess in ("pad", "none"):
        code, err = run(train_script, train_args(data, tmp_path / "ckpt", "t", "--dataset_mode", "paired",
                                                 "--preprocess", preprocess, "--netG", "resnet_6blocks"), capsys)
        line = one_line(err)
        assert code == 1 and "p0.png: 12x10 px" in line and "--netD basic" in line
        assert f"at least {first_fitting(3, 1, 4)}x{first_fitting(3, 1, 4)} px" in line
    assert not (tmp_path / "ckpt").exists()


def test_too_small_for_the_generator(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # resnet: two stride-2 convs; 4x4 leaves 1x1 maps, whose batch norm has one value per channel.
    # 8x8 leaves 2x2 (4 values): the smallest multiple of 4 it takes (by hand).
    data = paired_set(tmp_path / "tiny", [(3, 3)])
    code, err = run(train_script, train_args(data, tmp_path / "ckpt", "g", *PAD, "--netG", "resnet_6blocks",
                                             "--netD", "pixel"), capsys)
    line = one_line(err)
    assert code == 1 and "p0.png: 3x3 px (4x4 after --preprocess pad)" in line
    assert "--netG resnet_6blocks" in line and "at least 8x8 px" in line


# -- C5: pixels found bad mid-epoch ------------------------------------------------------------------------------

def _truncate(path: Path) -> None:
    """A PNG whose header is intact but whose pixel data stops short: only decoding finds it."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _nan_tiff(path: Path) -> None:
    values = np.full((32, 32), 0.5, np.float32)
    values[3, 4] = np.nan
    tifffile.imwrite(path, values)


def test_truncated_file_mid_epoch_saves_latest(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               caplog: pytest.LogCaptureFixture) -> None:
    data = aligned_set(tmp_path / "data", 7)
    _truncate(data / "train" / "6.png")   # the 7th in serial order: 6 steps of batch 1 before it
    argv = train_args(data, tmp_path / "ckpt", "t", "--serial_batches", "--max_steps", "10")
    code, err = run(train_script, argv, capsys)
    line = one_line(err)
    assert code == 1
    assert line.startswith(f"train.py: error: {data / 'train' / '6.png'}: cannot decode image")
    assert "'latest' saved after step 6 (epoch 1)" in line and "--skip_bad_images" in line
    assert "--continue_train" in line
    saved = torch.load(tmp_path / "ckpt" / "t" / "latest.pt", map_location="cpu", weights_only=False)
    assert saved["state"]["step"] == 6
    # The remedy the line gives works, from the saved step: the bad file left out at start-up.
    caplog.clear()
    assert train_script.main(argv + ["--continue_train", "--skip_bad_images", "--print_freq", "1"]) == 0
    assert "skipping bad image" in caplog.text and "resumed from latest at epoch 1, step 6" in caplog.text
    assert torch.load(tmp_path / "ckpt" / "t" / "latest.pt", map_location="cpu",
                      weights_only=False)["state"]["step"] == 10


def test_nan_tiff_at_first_step_saves_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = paired_set(tmp_path / "pairs", [(32, 32)])
    for side in "AB":
        (data / side / "train" / "p0.png").unlink()
        _nan_tiff(data / side / "train" / "p0.tif")
    code, err = run(train_script, train_args(data, tmp_path / "ckpt", "n", "--dataset_mode", "paired",
                                             "--input_nc", "1", "--output_nc", "1", "--max_steps", "2"), capsys)
    line = one_line(err)
    assert code == 1 and "p0.tif: floating-point samples include NaN" in line
    assert "no step trained in this run, nothing saved" in line
    assert not list((tmp_path / "ckpt" / "n").glob("*.pt"))


def assert_job_line(err: str, name: str, saved_after: str) -> None:
    """A --nproc 2 job stopped by a bad file rank 1 met: one line for the job (rank 0 says it for
    every rank, the launcher adds nothing), naming the file, the rank and the step saved."""
    lines = [line for line in err.splitlines() if line.startswith("train.py")]
    assert "Traceback" not in err and len(lines) == 1 and name in lines[0], err
    assert "(rank 1)" in lines[0] and f"'latest' saved after {saved_after}" in lines[0]


def latest_step(exp: Path) -> int:
    return torch.load(exp / "latest.pt", map_location="cpu", weights_only=False)["state"]["step"]


def test_bad_file_on_one_rank_stops_all_with_latest(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """--nproc 2 (gloo): rank 1 meets the bad file at its second step; rank 0 must not wait for
    it in the gradient all-reduce, and both save the step they agree on."""
    data = aligned_set(tmp_path / "data", 6)
    _truncate(data / "train" / "3.png")   # serial order over 2 ranks: rank 1 takes 1, 3, 5
    argv = train_args(data, tmp_path / "ckpt", "d", "--serial_batches", "--nproc", "2", "--max_steps", "10",
                      "--dist_timeout", "60")
    code, err = run(train_script, argv, capfd)   # the ranks are processes of their own: their stderr
    assert code == 1
    assert_job_line(err, "3.png", "step 1 (epoch 1)")
    assert latest_step(tmp_path / "ckpt" / "d") == 1


# A validation image found bad mid-run stops the run as a training image does (left by the audit's C5).

@pytest.mark.parametrize("when, saved_step, epoch", [(("--val_freq", "2"), 2, 1), (("--val_epoch_freq", "1"), 4, 2)])
def test_truncated_validation_image_saves_latest(when: tuple[str, str], saved_step: int, epoch: int, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str],
                                                 caplog: pytest.LogCaptureFixture) -> None:
    data = aligned_set(tmp_path / "data", 4)
    aligned_set(data, 3, phase="val")
    _truncate(data / "val" / "1.png")   # the header reads: the split opens, the first validation fails
    argv = train_args(data, tmp_path / "ckpt", "v", "--serial_batches", "--max_steps", "6", *when)
    code, err = run(train_script, argv, capsys)
    line = one_line(err)
    assert code == 1
    assert line.startswith(f"train.py: error: {data / 'val' / '1.png'}: cannot decode image")
    assert f"'latest' saved after step {saved_step} (epoch {epoch})" in line and "--continue_train" in line
    saved = torch.load(tmp_path / "ckpt" / "v" / "latest.pt", map_location="cpu", weights_only=False)
    assert saved["state"]["step"] == saved_step
    # The remedy named works for the validation split too: the file left out, the run goes on.
    caplog.clear()
    assert train_script.main(argv + ["--continue_train", "--skip_bad_images"]) == 0
    assert "validating on 2 images" in caplog.text and f"resumed from latest at epoch {epoch}, step {saved_step}" in caplog.text
    assert torch.load(tmp_path / "ckpt" / "v" / "latest.pt", map_location="cpu",
                      weights_only=False)["state"]["step"] == 6


def test_bad_validation_image_on_one_rank_stops_all(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """--nproc 2 (gloo): rank 1 meets the bad validation image at its second batch while rank 0's
    share decodes; rank 0 must not wait for rank 1's figures until --dist_timeout."""
    data = aligned_set(tmp_path / "data", 4)
    aligned_set(data, 4, phase="val")
    _truncate(data / "val" / "3.png")   # batches of 1 over 2 ranks: rank 1 validates 1 and 3
    argv = train_args(data, tmp_path / "ckpt", "dv", "--serial_batches", "--nproc", "2", "--max_steps", "10",
                      "--val_freq", "4", "--dist_timeout", "60")
    code, err = run(train_script, argv, capfd)
    assert code == 1
    assert_job_line(err, "3.png", "step 2 (epoch 1)")   # 4 samples = 2 steps of a global batch of 2
    assert latest_step(tmp_path / "ckpt" / "dv") == 2
