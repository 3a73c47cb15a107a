"""Options of train.py and test.py that the end-to-end tests do not exercise otherwise."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch
from PIL import Image

import test as test_driver
import train as train_driver
from tests.pipeline_helpers import make_aligned_dataset, tiny_args


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny ResNet run with batch norm, saved at epochs 1 and 2."""
    root = tmp_path_factory.mktemp("opts")
    data = make_aligned_dataset(root / "data", {"train": 4, "test": 2})
    args = tiny_args(data, root / "ck") + ["--batch_size", "2", "--n_epochs", "1", "--n_epochs_decay", "1",
                                           "--save_epoch_freq", "1", "--lr_policy", "step", "--lr_decay_iters", "1",
                                           "--beta1", "0.7", "--cache_dataset", "--amp", "none"]
    assert train_driver.main(args) == 0
    return data, root / "ck"


def run_test(data: Path, ck: Path, out: Path, *extra: str) -> Path:
    assert test_driver.main(["--dataroot", str(data), "--checkpoints_dir", str(ck), "--name", "tiny", "--gpu_ids",
                             "-1", "--num_threads", "0", "--load_size", "32", "--crop_size", "32",
                             "--results_dir", str(out), *extra]) == 0
    return next(out.glob("tiny/*/"))


def test_epoch_checkpoints_step_policy_and_beta1(trained: tuple[Path, Path]) -> None:
    _, ck = trained
    exp = ck / "tiny"
    assert {p.name for p in exp.glob("*.pt")} >= {"1.pt", "2.pt", "latest.pt", "1_net_G.pt"}
    ckpt = torch.load(exp / "2.pt", weights_only=True)
    group = ckpt["optimizers"]["G"]["param_groups"][0]
    assert group["betas"][0] == 0.7
    # step policy with --lr_decay_iters 1: x0.1 after each of the two epochs
    assert group["lr"] == pytest.approx(0.0002 * 0.01)


def test_epoch_option_loads_that_checkpoint(trained: tuple[Path, Path], tmp_path: Path) -> None:
    data, ck = trained
    page = run_test(data, ck, tmp_path, "--epoch", "1")
    assert page.name == "test_1"
    assert json.loads((page / "metrics.json").read_text())["checkpoint"].endswith("1_net_G.pt")


def test_aspect_ratio_and_display_winsize(trained: tuple[Path, Path], tmp_path: Path) -> None:
    data, ck = trained
    page = run_test(data, ck, tmp_path, "--aspect_ratio", "2.0", "--display_winsize", "123", "--num_test", "1")
    assert Image.open(page / "images" / "000_fake_B.png").size == (64, 32)
    assert 'src="images/000_fake_B.png" style="width:123px"' in (page / "index.html").read_text()
    assert len(list((page / "images").glob("*_fake_B.png"))) == 1  # --num_test 1


def test_eval_without_dropout_is_deterministic_and_precise_runs(trained: tuple[Path, Path], tmp_path: Path) -> None:
    data, ck = trained
    first = run_test(data, ck, tmp_path / "a", "--eval", "--bn_eval", "batch")
    second = run_test(data, ck, tmp_path / "b", "--eval", "--bn_eval", "batch", "--seed", "5")
    assert (first / "images" / "000_fake_B.png").read_bytes() == (second / "images" / "000_fake_B.png").read_bytes()
    precise = run_test(data, ck, tmp_path / "c", "--eval", "--bn_eval", "precise", "--bn_precise_batches", "2")
    behaviour = json.loads((precise / "metrics.json").read_text())["behaviour"]
    assert "bn_eval=precise" in behaviour and "dropout off" in behaviour
    on = run_test(data, ck, tmp_path / "d", "--eval", "--dropout", "on")
    assert "dropout on" in json.loads((on / "metrics.json").read_text())["behaviour"]


def test_inspect_layers_adds_a_page_section(trained: tuple[Path, Path], tmp_path: Path) -> None:
    data, ck = trained
    page = run_test(data, ck, tmp_path, "--inspect_layers", "down1,block2", "--num_test", "1")
    html = (page / "index.html").read_text()
    assert "layer inspection" in html and "grad_norm" in html
    maps = sorted(p.name for p in (page / "images" / "layers").glob("*.png"))
    assert len(maps) == 2


def test_inspect_layers_unknown_name_is_one_line(trained: tuple[Path, Path], tmp_path: Path, capsys) -> None:
    data, ck = trained
    code = test_driver.main(["--dataroot", str(data), "--checkpoints_dir", str(ck), "--name", "tiny", "--gpu_ids",
                             "-1", "--num_threads", "0", "--crop_size", "32", "--results_dir", str(tmp_path),
                             "--inspect_layers", "down9"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and "down9" in err and len(err.splitlines()) == 1


def test_verbose_logs_the_networks(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    data = make_aligned_dataset(tmp_path / "data", {"train": 2})
    with caplog.at_level(logging.DEBUG):
        assert train_driver.main(tiny_args(data, tmp_path / "ck") + ["--max_steps", "1", "--verbose"]) == 0
    text = caplog.text
    assert "net G: ResnetGenerator" in text and "ReflectionPad2d" in text
