"""Option parsing: per-model defaults, frozen options, and one-line errors for bad values."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from models.networks import DISCRIMINATORS, GENERATORS
from models.norms import NORMS
from options.parse import parse_options

ROOT = Path(__file__).resolve().parents[1]


def run_cli(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, script, *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_pix2pix_defaults_and_flags_of_the_classic_command_line() -> None:
    opt = parse_options(["--dataroot", "x", "--name", "facades", "--model", "pix2pix", "--direction", "BtoA",
                         "--gpu_ids", "-1"], is_train=True)
    assert (opt.netG, opt.norm, opt.dataset_mode, opt.gan_mode, opt.pool_size, opt.lambda_L1) == \
        ("unet_256", "batch", "aligned", "vanilla", 0, 100.0)
    assert (opt.load_size, opt.crop_size, opt.direction, opt.gpu_ids) == (286, 256, "BtoA", [])
    assert opt.display_id == 1 and opt.n_epochs == 100 and opt.n_epochs_decay == 100


def test_test_time_load_size_defaults_to_crop_size() -> None:
    opt = parse_options(["--dataroot", "x", "--crop_size", "512", "--gpu_ids", "-1"], is_train=False)
    assert opt.load_size == 512 and opt.dataset_mode == "aligned"
    assert parse_options(["--dataroot", "x", "--model", "test"], is_train=False).dataset_mode == "single"


def test_typed_values_beat_model_defaults_and_options_are_frozen() -> None:
    opt = parse_options(["--dataroot", "x", "--netG", "resnet_9blocks", "--norm", "instance"], is_train=True)
    assert (opt.netG, opt.norm) == ("resnet_9blocks", "instance")
    assert opt.explicit == ["dataroot", "netG", "norm"]
    with pytest.raises(AttributeError):
        opt.netG = "unet_128"


def test_no_dataroot_means_the_demo() -> None:
    opt = parse_options([], is_train=True)
    assert opt.use_demo and opt.netG == "unet_128" and opt.crop_size == 128 and opt.name == "demo"


def test_suffix_is_formatted_from_options() -> None:
    opt = parse_options(["--dataroot", "x", "--name", "exp", "--suffix", "{netG}_{load_size}"], is_train=True)
    assert opt.name == "exp_unet_256_286"


def test_help_lists_every_choice() -> None:
    out = run_cli("train.py", "--help").stdout
    for name in GENERATORS.names() + DISCRIMINATORS.names() + NORMS.names():
        assert name in out
    for flag in ("--lambda_L1", "--save_by_iter", "--load_iter", "--display_env", "--max_steps", "--seed"):
        assert flag in out
    assert "--bn_eval" in run_cli("test.py", "--help").stdout
    # Each norm is described on a line of its own.
    for name in NORMS.names():
        assert any(line.strip().startswith(f"{name}: ") for line in out.splitlines()), name


@pytest.mark.parametrize("args, expected", [
    (["--netG", "unet_512"], "invalid choice: 'unet_512' (choose from"),
    (["--norm", "bogus"], "argument --norm: invalid choice"),
    (["--batch_size", "0"], "--batch_size: must be a positive integer, got 0"),
    (["--crop_size", "-3"], "--crop_size: must be a positive integer, got -3"),
    (["--load_size", "200", "--crop_size", "256"], "--crop_size 256 is larger than --load_size 200"),
    (["--crop_size", "200", "--load_size", "286"], "--crop_size 200 does not fit --netG unet_256"),
    (["--netG", "unet_128", "--crop_size", "192", "--load_size", "200"], "use --crop_size 256"),
    (["--model", "colorization", "--input_nc", "3"], "--model colorization maps L to ab"),
    (["--suffix", "{nope}"], "--suffix '{nope}' names an unknown option"),
])
def test_invalid_options_give_one_line(args: list[str], expected: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as stop:
        parse_options(["--dataroot", "x", *args], is_train=True)
    assert stop.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0]


def test_bad_option_from_the_command_line_has_no_traceback() -> None:
    result = run_cli("train.py", "--dataroot", "x", "--crop_size", "200", "--load_size", "286")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    line = result.stderr.strip()
    assert "multiple of 256" in line and "use --crop_size 256" in line and "--netG resnet" in line
