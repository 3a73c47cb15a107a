"""What a resume trains with: the checkpoint's options where the user typed none (so a plain
--continue_train goes on with the run as it was), a one-line warning for typed ones that differ,
and nothing at all when --max_steps is already reached."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import train as train_driver
from options.parse import parse_options
from options.train import resume_exempt, resume_options
from tests.pipeline_helpers import make_aligned_dataset, tiny_args
from tests.test_faults import assert_same_training, weights
from tests.test_train_folder import snapshot
from util.errors import OptionError

# 2 pairs, batch 1: 2 steps per epoch, 4 in all. Typed on the first run only.
TRAINED_WITH = ["--direction", "BtoA", "--n_epochs", "1", "--n_epochs_decay", "1", "--seed", "3"]


def tiny(data: Path, checkpoints: Path, name: str = "tiny") -> list[str]:
    # Options of this process only (resume_exempt): typed on every run, as a resume does not take them.
    return tiny_args(data, checkpoints, name) + ["--print_freq", "1"]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return make_aligned_dataset(tmp_path / "data", {"train": 2})


def logged_steps(exp: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (exp / "loss_log.jsonl").read_text().splitlines()]


def test_plain_continue_train_resumes_the_run_as_it_was(data: Path, tmp_path: Path, capsys) -> None:
    assert train_driver.main(tiny(data, tmp_path / "a", "run") + TRAINED_WITH) == 0
    split = tiny(data, tmp_path / "b", "run")
    assert train_driver.main(split + TRAINED_WITH + ["--max_steps", "2"]) == 0
    capsys.readouterr()
    # Without --n_epochs the default 100 + 100 would make 400 steps of it, and without
    # --direction it would learn the other mapping.
    assert train_driver.main(split + ["--continue_train"]) == 0
    out = capsys.readouterr().out
    assert "options from the checkpoint:" in out and "direction BtoA" in out and "n_epochs 1" in out
    assert "differ from the checkpoint's" not in out
    assert logged_steps(tmp_path / "b" / "run") == [1, 2, 3, 4]
    assert_same_training(weights(tmp_path / "a" / "run" / "latest.pt"), weights(tmp_path / "b" / "run" / "latest.pt"))


def test_typed_differences_are_one_warning(data: Path, tmp_path: Path, capsys) -> None:
    args = tiny(data, tmp_path / "ck")
    assert train_driver.main(args + TRAINED_WITH + ["--max_steps", "2"]) == 0
    capsys.readouterr()
    # --print_freq, --display_freq and --max_steps concern this process only: no warning for them.
    assert train_driver.main(args + ["--continue_train", "--direction", "AtoB", "--batch_size", "2",
                                     "--print_freq", "2", "--max_steps", "3", "--display_freq", "1"]) == 0
    warnings = [ln for ln in capsys.readouterr().out.splitlines() if "differ from the checkpoint's" in ln]
    assert warnings == ["resuming with options that differ from the checkpoint's: batch_size 1 -> 2, "
                        "direction BtoA -> AtoB; the run is no longer the same as an uninterrupted one"]
    saved = torch.load(tmp_path / "ck" / "tiny" / "latest.pt", weights_only=True)["options"]
    assert (saved["direction"], saved["batch_size"], saved["n_epochs"]) == ("AtoB", 2, 1)


@pytest.mark.parametrize("max_steps", ["2", "1"])
def test_max_steps_already_reached_trains_nothing(data: Path, tmp_path: Path, capsys, max_steps: str) -> None:
    args = tiny(data, tmp_path / "ck") + TRAINED_WITH
    assert train_driver.main(args + ["--max_steps", "2"]) == 0
    exp = tmp_path / "ck" / "tiny"
    before = snapshot(exp)
    capsys.readouterr()
    assert train_driver.main(args + ["--max_steps", max_steps, "--continue_train"]) == 0
    out = capsys.readouterr().out
    assert f"already at step 2 (--max_steps {max_steps}): nothing to train; raise --max_steps to go on" in out
    assert "stopped after" not in out
    assert snapshot(exp) == before and logged_steps(exp) == [1, 2]


def test_adopted_options_are_checked_with_the_typed_ones(tmp_path: Path) -> None:
    opt = parse_options(["--dataroot", str(tmp_path), "--gpu_ids", "-1", "--crop_size", "64", "--netG", "resnet_6blocks",
                         "--continue_train"], is_train=True)
    with pytest.raises(OptionError, match="--crop_size 64 is larger than --load_size 32"):
        resume_options(opt, {"load_size": 32, "crop_size": 32})


def test_process_options_are_neither_taken_nor_warned_about(tmp_path: Path) -> None:
    opt = parse_options(["--dataroot", str(tmp_path), "--gpu_ids", "-1", "--name", "x", "--display_id", "0",
                         "--continue_train"], is_train=True)
    saved = {**opt.as_dict(), "name": "y", "display_id": 3, "num_threads": 7, "compile": True, "amp": "bf16",
             "max_steps": 9}
    merged, adopted, changed, steered = resume_options(opt, saved)
    assert merged is opt and adopted == [] and changed == [] and steered == []
    assert {"use_wandb", "use_tensorboard", "display_freq", "channels_last"} <= resume_exempt()
    assert not {"n_epochs", "direction", "seed", "epoch_count", "batch_size"} & resume_exempt()


def test_the_image_size_limit_is_taken_but_a_typed_one_is_no_change(tmp_path: Path) -> None:
    """--max_image_pixels only admits or refuses the data: a run that needed it raised resumes
    without typing it again, and a typed value is not listed as a change of the run."""
    saved_limit = {"max_image_pixels": 0, "direction": "AtoB"}
    untyped = parse_options(["--dataroot", str(tmp_path), "--gpu_ids", "-1", "--continue_train"], is_train=True)
    merged, adopted, changed, _ = resume_options(untyped, {**untyped.as_dict(), **saved_limit})
    assert merged.max_image_pixels == 0 and adopted == ["max_image_pixels 0"] and changed == []
    typed = parse_options(["--dataroot", str(tmp_path), "--gpu_ids", "-1", "--continue_train",
                           "--max_image_pixels", "5000", "--direction", "BtoA"], is_train=True)
    merged, adopted, changed, steered = resume_options(typed, {**typed.as_dict(), **saved_limit})
    assert merged.max_image_pixels == 5000 and adopted == [] and steered == []
    assert changed == ["direction AtoB -> BtoA"]


def test_a_typed_size_is_checked_against_the_checkpoints_generator(data: Path, tmp_path: Path, capsys) -> None:
    """The run trained --netG resnet_6blocks at 32 px; a resume that types --crop_size 32 but not
    --netG trains on with the checkpoint's generator. Checking the typed size against the parser's
    default --netG unet_256 (multiples of 256) refused this valid resume at parse time."""
    args = tiny(data, tmp_path / "ck") + TRAINED_WITH
    assert train_driver.main(args + ["--max_steps", "1"]) == 0
    resumed = [a for i, a in enumerate(args) if a != "--netG" and (i == 0 or args[i - 1] != "--netG")]
    assert "resnet_6blocks" not in resumed and "--crop_size" in resumed
    assert train_driver.main(resumed + ["--max_steps", "2", "--continue_train"]) == 0
    assert logged_steps(tmp_path / "ck" / "tiny") == [1, 2]
    # Without a checkpoint to take it from, the same size check still refuses, in one line.
    capsys.readouterr()
    assert train_driver.main(resumed + ["--name", "fresh", "--continue_train", "auto"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--crop_size 32 does not fit --netG unet_256" in err
    assert not (tmp_path / "ck" / "fresh").exists()


def test_typed_validation_settings_are_no_warning_and_untyped_ones_come_from_the_checkpoint(
        tmp_path: Path, capsys) -> None:
    """Validation steers nothing that is trained: a resume typing other --val_* / --best_metric
    values lists them as validation settings, not as a run that differs; one typing none of them
    validates as the checkpoint did."""
    data = make_aligned_dataset(tmp_path / "data", {"train": 2, "val": 2})
    args = tiny(data, tmp_path / "ck") + TRAINED_WITH
    validation = ["--val_epoch_freq", "1", "--val_max_images", "1", "--best_metric", "psnr"]
    assert train_driver.main(args + validation + ["--max_steps", "2"]) == 0
    capsys.readouterr()
    assert train_driver.main(args + ["--continue_train", "--max_steps", "3", "--val_max_images", "2",
                                     "--val_freq", "1"]) == 0
    out = capsys.readouterr().out
    assert "differ from the checkpoint's" not in out
    assert "validation settings changed: val_freq 0 -> 1, val_max_images 1 -> 2" in out
    assert "best_metric psnr" in out and "val_epoch_freq 1" in out   # taken from the checkpoint
    # Validated at step 3 (--val_freq 1 typed now), on 2 images (typed), scored by PSNR (taken).
    val = [json.loads(line) for line in (tmp_path / "ck" / "tiny" / "loss_log.jsonl").read_text().splitlines()
           if "metrics" in line]
    assert [r["step"] for r in val] == [2, 3] and "PSNR" in val[-1]["metrics"]
    # A typed change of what is trained still warns, validation settings beside it listed apart.
    assert train_driver.main(args + ["--continue_train", "--max_steps", "4", "--val_phase", "val",
                                     "--lambda_L1", "50"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(ln.endswith("resuming with options that differ from the checkpoint's: lambda_L1 100.0 -> 50.0; "
                           "the run is no longer the same as an uninterrupted one") for ln in lines)
    assert not any("validation settings changed" in ln for ln in lines)   # val_phase val is the checkpoint's


def test_a_typed_epoch_count_on_a_checkpoint_with_counters_is_refused(data: Path, tmp_path: Path, capsys) -> None:
    """The reference's resume habit (--continue_train --epoch_count N) on one of our checkpoints:
    the checkpoint records its epoch, so a second starting epoch only shifted the schedule (a
    linear one to a negative rate: --epoch_count 7 after 2 epochs of 2 + 2 trained at -3.3e-4)."""
    args = tiny(data, tmp_path / "ck") + ["--n_epochs", "2", "--n_epochs_decay", "2"]
    assert train_driver.main(args + ["--max_steps", "2"]) == 0
    exp = tmp_path / "ck" / "tiny"
    before = snapshot(exp)
    capsys.readouterr()
    assert train_driver.main(args + ["--continue_train", "--epoch_count", "7"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--epoch_count 7: this checkpoint records its own epoch" in err
    assert snapshot(exp) == before


def test_the_linear_factor_never_goes_below_zero() -> None:
    from models.schedulers import linear_factor

    # 2 + 2 epochs: 1, 1, 2/3, 1/3, then (past the end) 0, never negative.
    assert [linear_factor(e, 2, 2) for e in range(1, 8)] == pytest.approx([1.0, 1.0, 2 / 3, 1 / 3, 0.0, 0.0, 0.0],
                                                                         abs=1e-15)
    assert min(linear_factor(e, 2, 2) for e in range(1, 20)) == 0.0


def test_a_finished_run_resumed_says_so_and_writes_nothing(data: Path, tmp_path: Path, capsys) -> None:
    args = tiny(data, tmp_path / "ck") + TRAINED_WITH   # 1 + 1 epochs of 2 steps
    assert train_driver.main(args) == 0
    exp = tmp_path / "ck" / "tiny"
    before = snapshot(exp)
    capsys.readouterr()
    assert train_driver.main(args + ["--continue_train"]) == 0
    out = capsys.readouterr().out
    assert ("training already complete: the checkpoint is at the end of epoch 2, the schedule's last "
            "(--n_epochs 1 + --n_epochs_decay 1 = 2 epochs); raise --n_epochs or --n_epochs_decay to go on") in out
    assert snapshot(exp) == before and logged_steps(exp) == [1, 2, 3, 4]


@pytest.mark.parametrize("schedule", [["--n_epochs", "0", "--n_epochs_decay", "0"],
                                      ["--n_epochs", "1", "--n_epochs_decay", "1", "--epoch_count", "3"]])
def test_a_fresh_run_with_nothing_to_train_is_refused(data: Path, tmp_path: Path, capsys, schedule: list[str]) -> None:
    assert train_driver.main(tiny(data, tmp_path / "ck") + schedule) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nothing to train: the run would start at epoch" in err
    assert not (tmp_path / "ck" / "tiny").exists()


def test_a_missing_checkpoint_is_named_as_the_user_asked_for_it(data: Path, tmp_path: Path, capsys) -> None:
    args = tiny(data, tmp_path / "ck") + TRAINED_WITH
    assert train_driver.main(args + ["--max_steps", "1"]) == 0
    capsys.readouterr()
    assert train_driver.main(args + ["--continue_train", "--load_iter", "7"]) == 1
    err = capsys.readouterr().err
    assert "iter_7.pt: no such checkpoint to resume from (--continue_train --load_iter 7); saved: latest" in err


def test_a_reference_g_file_without_its_d_file_names_the_missing_file(data: Path, tmp_path: Path, capsys) -> None:
    exp = tmp_path / "ck" / "tiny"
    exp.mkdir(parents=True)
    torch.save({"model.0.weight": torch.zeros(4, 3, 7, 7)}, exp / "latest_net_G.pth")
    assert train_driver.main(tiny(data, tmp_path / "ck") + ["--continue_train"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{exp / 'latest_net_D.pth'}: missing beside the reference's latest_net_G.pth" in err


def test_the_last_step_of_the_schedule_by_max_steps_says_training_is_complete(data: Path, tmp_path: Path,
                                                                               capsys) -> None:
    args = tiny(data, tmp_path / "ck") + TRAINED_WITH   # 4 steps in all
    assert train_driver.main(args + ["--max_steps", "4"]) == 0
    assert ("stopped after --max_steps 4, at the end of epoch 2, the schedule's last: training complete"
            in capsys.readouterr().out)


def test_a_shortened_schedule_names_where_a_mid_epoch_checkpoint_is(data: Path, tmp_path: Path, capsys) -> None:
    args = tiny(data, tmp_path / "ck")
    assert train_driver.main(args + TRAINED_WITH + ["--max_steps", "3"]) == 0   # 1 step into epoch 2
    capsys.readouterr()
    assert train_driver.main(args + ["--continue_train", "--n_epochs", "1", "--n_epochs_decay", "0"]) == 0
    assert ("training already complete: the checkpoint is in epoch 2 (step 3), past the schedule's last "
            "(--n_epochs 1 + --n_epochs_decay 0 = 1 epochs)") in capsys.readouterr().out
