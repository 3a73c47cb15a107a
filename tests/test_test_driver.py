"""test.py: it reads the checkpoint once, and its metrics are those of the images it writes."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import engine.checkpoint.generator as checkpoint_generator
import models.load_generator as load_generator
import test as test_driver
from tests.pipeline_helpers import train_tiny_run
from tests.test_metrics_oracle import oracle


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("run")
    return train_tiny_run(root, test_images=2)


def _test(data: Path, checkpoints: Path, results: Path, *extra: str) -> Path:
    assert test_driver.main(["--dataroot", str(data), "--checkpoints_dir", str(checkpoints), "--name", "tiny",
                             "--results_dir", str(results), "--load_size", "32", "--crop_size", "32",
                             "--num_threads", "0", "--gpu_ids", "-1", *extra]) == 0
    return results / "tiny" / "test_latest"


@pytest.mark.parametrize("aspect_ratio, size", [("2.0", (64, 32)), ("0.5", (32, 64)), ("1.0", (32, 32))])
def test_metrics_are_measured_on_the_written_images(trained, tmp_path: Path, aspect_ratio: str, size):
    page = _test(*trained, tmp_path / "r", "--aspect_ratio", aspect_ratio)
    reported = json.loads((page / "metrics.json").read_text())["images"]
    assert sorted(reported) == ["000", "001"]
    for stem, metrics in reported.items():
        fake = np.asarray(Image.open(page / "images" / f"{stem}_fake_B.png"))
        real = np.asarray(Image.open(page / "images" / f"{stem}_real_B.png"))
        assert fake.shape == real.shape == (size[1], size[0], 3)
        expected = oracle(fake, real)
        for key, tol in (("L1", 1e-6), ("PSNR", 1e-3), ("SSIM", 1e-4)):
            assert metrics[key] == pytest.approx(expected[key], abs=tol), (stem, key)


def test_the_checkpoint_is_read_once(trained, tmp_path: Path, monkeypatch):
    reads: Counter[str] = Counter()
    real_load = checkpoint_generator.load_file

    def counting_load(path, *args, **kwargs):
        reads[Path(path).name] += 1
        return real_load(path, *args, **kwargs)

    monkeypatch.setattr(checkpoint_generator, "load_file", counting_load)
    _test(*trained, tmp_path / "r")
    assert reads and all(n == 1 for n in reads.values()), reads


@pytest.mark.parametrize("key, saved, typed", [("ngf", 8, 4), ("netG", "unet_128", "resnet_6blocks"),
                                               ("output_nc", 1, 3), ("upsample", "deconv", "bilinear")])
def test_inference_and_resume_check_the_spec_with_one_sentence(key: str, saved, typed, tmp_path: Path):
    """test.py/translate.py (spec_for: typed flags) and --continue_train (mismatch: the model's
    spec) refuse a checkpoint with the same sentence (inference adds that an untyped flag comes from the
    checkpoint); D-only options do not matter for inference."""
    import argparse

    from engine.checkpoint import CheckpointError, SavedGenerator
    from models.networks import GENERATORS
    from models.networks.spec import mismatch

    base = {"netG": "unet_128", "ngf": 4, "input_nc": 3, "output_nc": 3, "norm": "batch", "upsample": "deconv"}
    saved_spec = GENERATORS.from_options({**base, key: saved})
    expected = f"checkpoint was trained with --{key} {saved}, you asked for --{key} {typed}"
    assert mismatch(saved_spec, GENERATORS.from_options({**base, key: typed}), "netG") == expected
    checkpoint = SavedGenerator(tmp_path / "x.pt", {}, saved_spec.as_dict(), {"ndf": 64})
    opt = argparse.Namespace(**{**base, key: typed, "ndf": 8, "no_dropout": False, "explicit": {key, "ndf"}})
    with pytest.raises(CheckpointError) as err:
        load_generator.options_for(opt, checkpoint)
    # Inference takes every option not typed from the checkpoint, so its line names that way out.
    assert str(err.value) == f"{tmp_path / 'x.pt'}: {expected}; leave --{key} out (it comes from the checkpoint)"
    # Typed values that agree, and untyped ones that differ, take the checkpoint's spec.
    opt = argparse.Namespace(**{**base, "ngf": 64, key: saved, "ndf": 8, "no_dropout": True,
                                "explicit": {key, "ndf"}})
    assert load_generator.spec_for(opt, checkpoint) == saved_spec


def test_a_typed_netG_is_checked_against_the_checkpoint_before_the_size(trained, tmp_path: Path, capsys):
    # --crop_size 32 does not fit unet_256 either; the checkpoint's resnet_6blocks is the real conflict.
    data, checkpoints = trained
    assert test_driver.main(["--dataroot", str(data), "--checkpoints_dir", str(checkpoints), "--name", "tiny",
                             "--results_dir", str(tmp_path), "--load_size", "32", "--crop_size", "32",
                             "--gpu_ids", "-1", "--netG", "unet_256"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert ("checkpoint was trained with --netG resnet_6blocks, you asked for --netG unet_256; leave --netG out "
            "(it comes from the checkpoint)") in err


def test_bn_eval_without_eval_is_refused(trained, tmp_path: Path, capsys):
    data, checkpoints = trained
    assert test_driver.main(["--dataroot", str(data), "--checkpoints_dir", str(checkpoints), "--name", "tiny",
                             "--results_dir", str(tmp_path), "--gpu_ids", "-1", "--bn_eval", "precise"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--bn_eval precise only applies with --eval" in err
    assert not (tmp_path / "tiny").exists()


def test_a_checkpoint_file_given_as_name_is_one_line(trained, tmp_path: Path, capsys):
    data, checkpoints = trained
    assert test_driver.main(["--dataroot", str(data), "--checkpoints_dir", str(checkpoints), "--name",
                             "tiny/latest_net_G.pt", "--results_dir", str(tmp_path), "--gpu_ids", "-1"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (f"test.py: error: --name tiny/latest_net_G.pt: --name is the run's folder name, found under "
                   f"--checkpoints_dir, not a file; for latest_net_G.pt give --checkpoints_dir {checkpoints} --name tiny")


def test_num_test_reads_only_the_first_images(trained, tmp_path: Path):
    """--num_test N is the split's first N images: a damaged file after them is never opened
    (it stopped the run before), and the batches are those validation scores."""
    data, checkpoints = trained
    split = tmp_path / "data"
    (split / "test").mkdir(parents=True)
    for name in ("000.png", "001.png"):
        (split / "test" / name).write_bytes((data / "test" / name).read_bytes())
    (split / "test" / "002.png").write_bytes(b"not a png")   # sorts last
    page = _test(split, checkpoints, tmp_path / "r", "--num_test", "2", "--batch_size", "2")
    assert sorted(json.loads((page / "metrics.json").read_text())["images"]) == ["000", "001"]
