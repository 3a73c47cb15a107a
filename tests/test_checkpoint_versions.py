"""Checkpoints written by version 1 of the format (options only, no spec) still infer and resume
as the code that wrote them did; new files carry the format version and the specs.

The fixtures (tests/fixtures/checkpoints_v1/, see tests/fixtures/README.md) were written by that
code, with what it inferred and what it resumed to; the comparisons allow for the rounding of
another CPU (on the machine that wrote them the results are bit-identical).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

import train as train_script
from engine.checkpoint import FULL_FORMAT, GENERATOR_FORMAT, CheckpointError, find_generator
from inference.generator import load_generator
from models.networks import architecture_from_options
from options.inference import parse_inference_options
from tests.test_ddp import write_pairs
from util.omp_env import wait_policy

FIXTURES = Path(__file__).parent / "fixtures" / "checkpoints_v1"
EXPECTED = torch.load(FIXTURES / "v1_expected.pt", weights_only=True)
# What the fixture's options describe: unet_128 (7 downsamplings) at 1 filter, gray to gray.
SPEC_G = {"family": "unet", "name": "unet_128",
          "fields": {"input_nc": 1, "output_nc": 1, "ngf": 1, "norm": "batch", "dropout": True,
                     "upsample": "deconv", "num_downs": 7}}
TOLERANCE = dict(rtol=1e-5, atol=1e-6)


def infer(*extra: str) -> torch.Tensor:
    opt = parse_inference_options(["--name", "v1", "--checkpoints_dir", str(FIXTURES), "--gpu_ids", "-1", "--eval",
                                   *extra], "translate.py", "test")
    loaded = load_generator(opt)
    assert loaded.spec.as_dict() == SPEC_G and loaded.size_multiple == 128
    with torch.no_grad():
        return loaded.net(EXPECTED["input"])


@pytest.mark.parametrize("weights, extra", [("ema", []), ("no_ema", ["--no_ema"])])
def test_a_version_1_checkpoint_infers_as_before(weights: str, extra: list[str]) -> None:
    torch.testing.assert_close(infer(*extra), EXPECTED[weights], **TOLERANCE)


def test_version_1_files_get_the_spec_their_options_describe() -> None:
    for use_ema, name in ((True, "latest.pt"), (False, "latest_net_G.pt")):
        saved = find_generator(FIXTURES / "v1", "latest", architecture_from_options, use_ema)
        assert saved.path.name == name and saved.spec == SPEC_G and saved.ema == use_ema


def test_a_typed_flag_that_contradicts_a_version_1_file_is_one_line() -> None:
    with pytest.raises(CheckpointError) as err:
        infer("--norm", "instance")
    assert str(err.value).endswith("latest.pt: checkpoint was trained with --norm batch, you asked for --norm instance; "
                                   "leave --norm out (it comes from the checkpoint)")


def test_a_version_1_checkpoint_resumes_as_before_and_is_saved_in_the_current_format(tmp_path: Path) -> None:
    pairs = write_pairs(tmp_path / "pairs", n=2, side=128)   # the pictures the fixture was trained on
    shutil.copytree(FIXTURES / "v1", tmp_path / "ck" / "v1")
    argv = ["--dataroot", str(pairs), "--checkpoints_dir", str(tmp_path / "ck"), "--name", "v1", "--gpu_ids", "-1",
            "--netG", "unet_128", "--ngf", "1", "--ndf", "1", "--input_nc", "1", "--output_nc", "1",
            "--load_size", "128", "--crop_size", "128", "--preprocess", "none", "--num_threads", "0",
            "--display_id", "0", "--no_html", "--print_freq", "1", "--n_epochs", "2", "--n_epochs_decay", "0",
            "--amp", "none", "--ema_decay", "0.5", "--max_steps", "3", "--continue_train"]
    assert train_script.main(argv) == 0
    saved = torch.load(tmp_path / "ck" / "v1" / "latest.pt", weights_only=True)
    expected = EXPECTED["resumed_step3"]
    # The fixture predates the --early_stop counter, which the current format saves (0: no validation).
    assert saved["state"] == {**expected["state"], "validations_since_best": 0}
    torch.testing.assert_close(saved["nets"], expected["nets"], **TOLERANCE)
    assert saved["format"] == FULL_FORMAT and saved["specs"]["G"] == SPEC_G
    # The fixture's options say --amp none: kept, and now recorded with this process's waiting.
    assert saved["execution"] == {"amp": "none", "amp_source": "--amp none", "omp_wait": wait_policy(os.environ)}
    assert saved["specs"]["D"] == {"family": "patchgan", "name": "basic",
                                   "fields": {"input_nc": 2, "ndf": 1, "norm": "batch", "n_layers": 3}}
    generator = torch.load(tmp_path / "ck" / "v1" / "latest_net_G.pt", weights_only=True)
    assert generator["format"] == GENERATOR_FORMAT and generator["spec"] == SPEC_G
    assert generator["execution"] == saved["execution"]


def test_resuming_a_version_1_checkpoint_with_another_width_is_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pairs = write_pairs(tmp_path / "pairs", n=2, side=128)
    shutil.copytree(FIXTURES / "v1", tmp_path / "ck" / "v1")
    argv = ["--dataroot", str(pairs), "--checkpoints_dir", str(tmp_path / "ck"), "--name", "v1", "--gpu_ids", "-1",
            "--netG", "unet_128", "--ngf", "2", "--ndf", "1", "--input_nc", "1", "--output_nc", "1",
            "--load_size", "128", "--crop_size", "128", "--preprocess", "none", "--num_threads", "0",
            "--display_id", "0", "--no_html", "--amp", "none", "--continue_train"]
    assert train_script.main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].endswith("latest.pt: checkpoint was trained with --ngf 1, you asked for --ngf 2")
