"""benchmarks/train_speed.py: it times the model's own training step (the phase split is that
step given a timer, not a copy of it), and a missing --dataroot is one line with the way to get it."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

from benchmarks import train_speed
from models.pix2pix_model import Pix2PixModel

ROOT = Path(__file__).resolve().parents[1]

PHASES = {"set_input", "G_forward", "D_forward_backward", "optimizers", "G_backward_with_D_forward"}


def test_the_split_is_the_models_own_step_and_trains_like_it(tmp_path, monkeypatch):
    calls: list[bool] = []
    real_step = Pix2PixModel.train_step

    def recording_step(self, *args, **kwargs):
        calls.append(bool(args or kwargs))   # True: given a phase timer
        return real_step(self, *args, **kwargs)
    monkeypatch.setattr(Pix2PixModel, "train_step", recording_step)
    bench = train_speed.bench_parser().parse_args([
        "--dataroot", str(tmp_path), "--variants", "eager_fp32", "--netG", "resnet_6blocks", "--crop_size", "32",
        "--warmup", "0", "--steps", "2", "--split_steps", "1", "--loader_batches", "0", "--no_flops"])
    (record,) = train_speed.run(bench, ["--ngf", "4", "--ndf", "4"])
    # 2 timed steps, 1 split step, 1 for the memory peak: all through train_step.
    assert calls == [False, False, True, False]
    assert set(record["split_s"]) == PHASES and all(v >= 0 for v in record["split_s"].values())
    assert record["steps"] == 2 and record["s_per_step"] > 0 and record["netG"] == "resnet_6blocks"


def test_the_phase_runner_sees_every_part_of_the_step_in_order():
    from models import create_model
    from options.parse import parse_options
    from engine.distributed import single_process_runtime

    opt = parse_options(["--dataroot", "unused", "--gpu_ids", "-1", "--netG", "resnet_6blocks", "--ngf", "4",
                         "--ndf", "4", "--crop_size", "32", "--load_size", "32", "--amp", "none"], is_train=True)
    torch.manual_seed(0)
    model = create_model(opt, single_process_runtime([]))
    model.set_input({"A": torch.zeros(1, 3, 32, 32), "B": torch.zeros(1, 3, 32, 32)})
    seen: list[str] = []
    losses = model.train_step(lambda name, fn: (seen.append(name), fn())[1])
    assert seen == ["G_forward", "D_forward_backward", "optimizers", "G_backward_with_D_forward", "optimizers"]
    assert {"G_GAN", "G_L1", "D_real", "D_fake"} <= set(losses)


def test_a_missing_dataroot_is_one_line_naming_the_download_script(tmp_path, monkeypatch):
    # The default is where datasets/download_pix2pix_dataset.sh puts facades, whatever the cwd.
    assert train_speed.bench_parser().parse_args([]).dataroot == ROOT / "datasets" / "facades"
    monkeypatch.setattr(train_speed, "FACADES", tmp_path / "facades")
    assert train_speed.missing_dataroot(tmp_path / "facades") == (
        f"train_speed.py: error: --dataroot {tmp_path / 'facades'}: no such folder "
        "(bash datasets/download_pix2pix_dataset.sh facades puts it there)")
    assert train_speed.missing_dataroot(tmp_path) is None
    missing = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "train_speed.py"), "--dataroot",
                              str(tmp_path / "nothing")], capture_output=True, text=True, timeout=120,
                             env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert missing.returncode == 2 and missing.stdout == ""
    assert missing.stderr.strip() == f"train_speed.py: error: --dataroot {tmp_path / 'nothing'}: no such folder"
