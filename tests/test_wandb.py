"""--use_wandb: a tiny training run logs offline, and W&B's own reader of the run file (wandb-core's
``wandb leet inspect --json``) finds the losses, learning rate, timings, validation metrics,
images and options at the right steps. Nothing here reaches the network: the mode is offline,
and W&B's server address points at a loopback port where nothing listens."""
from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import train as train_driver
import training.loop as training_loop
from reporting.reporter import Reporter, build_reporter
from reporting.sink import MetricsPoint
from reporting.sinks import wandb as wandb_sink
from options.parse import parse_options
from tests.pipeline_helpers import make_aligned_dataset, tiny_args

WANDB_CLI = Path(sys.executable).with_name("wandb")
LOSS_NAMES = ("G_GAN", "G_L1", "D_real", "D_fake")


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, unused_loopback_port: int) -> None:
    monkeypatch.delenv("WANDB_MODE", raising=False)              # the default must be offline by itself
    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{unused_loopback_port}")
    monkeypatch.setenv("WANDB_ERROR_REPORTING", "false")
    for var in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(var, str(tmp_path / "wandb_home" / var.lower()))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_aligned_dataset(tmp_path_factory.mktemp("data"), {"train": 4})


def wandb_args(data: Path, ck: Path, *extra: str) -> list[str]:
    return tiny_args(data, ck, name="wb") + [
        "--use_wandb", "--wandb_project", "tiny_project", "--batch_size", "2", "--print_freq", "4",
        "--display_freq", "8", "--max_steps", "4", "--n_epochs", "2", "--n_epochs_decay", "0", "--no_html", *extra]


def run_records(run_dir: Path) -> list[dict]:
    """Every record of the run's .wandb file, as wandb-core reads it back."""
    files = list(run_dir.glob("run-*.wandb"))
    assert len(files) == 1, files
    out = subprocess.run([str(WANDB_CLI), "leet", "inspect", "--json", str(files[0])], capture_output=True,
                         text=True, timeout=120, env={**os.environ, "WANDB_MODE": "offline"})
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def test_offline_run_holds_losses_lr_timings_metrics_images_and_options(
        tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    real = training_loop.report_and_save

    def report_then_validate(run, model, state, *rest) -> None:
        real(run, model, state, *rest)
        if state.step == 2:  # what validation during training does: one metrics dict per run of it
            run.reporter.report_metrics(state.step, {"L1": 0.25, "PSNR": 14.5})

    monkeypatch.setattr(training_loop, "report_and_save", report_then_validate)
    with caplog.at_level(logging.INFO):
        assert train_driver.main(wandb_args(tiny_data, tmp_path / "ck")) == 0

    run_dirs = list((tmp_path / "ck" / "wb" / "wandb").glob("offline-run-*"))
    assert len(run_dirs) == 1, run_dirs
    sync_lines = [r.getMessage() for r in caplog.records if "wandb sync" in r.getMessage()]
    assert sync_lines == [f"W&B logs offline to {run_dirs[0]}; upload it later with: wandb sync {run_dirs[0]}"]

    records = run_records(run_dirs[0])
    run = next(r["run"] for r in records if r["type"] == "run")
    assert run["display_name"] == "wb" and run["project"] == "tiny_project"
    config = run["config"]["update"]
    assert config["name"] == "wb" and config["batch_size"] == 2 and config["netG"] == "resnet_6blocks"

    # W&B merges what is logged at one step into one history row.
    rows = {r["history"]["step"]["num"]: r["history"]["item"] for r in records if r["type"] == "history"}
    assert sorted(rows) == [2, 4]  # batch 2, --print_freq 4 samples: a point every second step
    for step in (2, 4):
        assert {f"loss/{name}" for name in LOSS_NAMES} | {"lr", "epoch", "time/time_per_sample",
                                                          "time/data_time"} <= set(rows[step])
        assert rows[step]["lr"] == pytest.approx(0.0002)
    assert rows[2]["val/L1"] == 0.25 and rows[2]["val/PSNR"] == 14.5 and "val/L1" not in rows[4]
    assert rows[4]["images.count"] == 1 and rows[4]["images.captions"] == ["real_A | fake_B | real_B"]
    assert rows[4]["epoch"] == pytest.approx(2.0)  # 4 images, batch 2: step 4 ends epoch 2

    # The loss log holds the same numbers: one reporting path.
    log_lines = [json.loads(line) for line in (tmp_path / "ck" / "wb" / "loss_log.jsonl").read_text().splitlines()]
    by_step = {(r["step"], "metrics" in r): r for r in log_lines}
    assert rows[4]["loss/G_L1"] == pytest.approx(by_step[(4, False)]["losses"]["G_L1"])
    assert by_step[(2, True)]["metrics"] == {"L1": 0.25, "PSNR": 14.5}


def test_image_grid_is_the_visuals_side_by_side(tmp_path: Path) -> None:
    import numpy as np
    import torch
    from PIL import Image

    sink = wandb_sink.WandbSink(wandb_sink.WandbConfig(project="p", name="grid", run_dir=tmp_path))
    white, black = torch.ones(1, 3, 8, 8), -torch.ones(1, 1, 8, 8)
    reporter = Reporter([sink])
    reporter.report_images({"fake_B": white, "real_A": black}, epoch=1, step=1, snapshot=False)
    reporter.close()
    pngs = list(tmp_path.glob("wandb/offline-run-*/files/media/images/*.png"))
    assert len(pngs) == 1
    pixels = np.asarray(Image.open(pngs[0]).convert("RGB"))
    # 2 px frame, then the 8 px tiles left to right, 2 px apart: white, then the grey input as black RGB.
    assert pixels.shape == (8 + 4, 2 * 8 + 3 * 2, 3)
    assert (pixels[2:10, 2:10] == 255).all() and (pixels[2:10, 12:20] == 0).all()


def test_mode_is_the_flag_then_the_environment_then_offline() -> None:
    assert wandb_sink.resolve_mode(None, {}) == "offline"
    assert wandb_sink.resolve_mode(None, {"WANDB_MODE": "disabled"}) == "disabled"
    assert wandb_sink.resolve_mode("online", {"WANDB_MODE": "offline"}) == "online"


def test_failing_init_is_one_warning_and_training_goes_on(
        tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    import wandb

    def refuse(**kwargs):
        raise wandb.errors.CommError("no route to the W&B server")

    monkeypatch.setattr(wandb, "init", refuse)
    with caplog.at_level(logging.WARNING):
        assert train_driver.main(wandb_args(tiny_data, tmp_path / "ck")) == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and "W&B" in r.getMessage()]
    assert len(warnings) == 1 and "W&B could not start" in warnings[0] and "no route" in warnings[0]
    assert (tmp_path / "ck" / "wb" / "latest.pt").is_file()


def test_missing_package_is_one_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setitem(sys.modules, "wandb", None)  # makes `import wandb` raise ImportError
    with caplog.at_level(logging.WARNING):
        sink = wandb_sink.WandbSink(wandb_sink.WandbConfig(project="p", name="n", run_dir=tmp_path))
        sink.metrics(MetricsPoint(step=1, epoch=1, epoch_frac=1.0, split="val", metrics={"L1": 0.1}))
        sink.close()
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "pip install wandb" in warnings[0]
    assert not sink.active and not (tmp_path / "wandb").exists()


def test_only_the_main_process_logs(tiny_data: Path, tmp_path: Path) -> None:
    opt = parse_options(wandb_args(tiny_data, tmp_path / "ck"), is_train=True)
    others = build_reporter(opt, tmp_path / "rank1", enabled=False)
    assert others.sinks == []
    others.report_metrics(1, {"L1": 0.1})
    others.close()
    assert not (tmp_path / "rank1").exists()


def test_under_ddp_one_run_is_logged_by_the_main_process(tiny_data: Path, tmp_path: Path) -> None:
    argv = wandb_args(tiny_data, tmp_path / "ck", "--print_freq", "2", "--nproc", "2", "--amp", "none")
    assert train_driver.main(argv) == 0
    run_dirs = list((tmp_path / "ck" / "wb" / "wandb").glob("offline-run-*"))
    assert len(run_dirs) == 1, run_dirs
    rows = {r["history"]["step"]["num"]: r["history"]["item"] for r in run_records(run_dirs[0])
            if r["type"] == "history"}
    log_lines = [json.loads(line) for line in (tmp_path / "ck" / "wb" / "loss_log.jsonl").read_text().splitlines()]
    # 4 images over 2 processes x batch 2: one step an epoch, each crossing --print_freq 2; the
    # losses are the mean over both ranks, as in the loss log.
    assert sorted(rows) == [r["step"] for r in log_lines] == [1, 2]
    assert [rows[r["step"]]["loss/G_L1"] for r in log_lines] == pytest.approx([r["losses"]["G_L1"] for r in log_lines])


def test_a_resumed_run_goes_on_in_the_same_wandb_run(tiny_data: Path, tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    """Steps 1-2, then a resume for 3-4: offline, each process writes its own folder, both of one
    W&B run id (the second marked as a resume), which `wandb sync` uploads as one run; a fresh
    run (--overwrite) gets a new id."""
    args = wandb_args(tiny_data, tmp_path / "ck", "--print_freq", "2")
    assert train_driver.main(args + ["--max_steps", "2"]) == 0
    with caplog.at_level(logging.INFO):
        assert train_driver.main(args + ["--continue_train"]) == 0
    run_dirs = sorted((tmp_path / "ck" / "wb" / "wandb").glob("offline-run-*"))
    assert len(run_dirs) == 2, run_dirs
    runs = [next(r["run"] for r in run_records(d) if r["type"] == "run") for d in run_dirs]
    assert runs[0]["run_id"] == runs[1]["run_id"] and runs[1].get("resume") is True and not runs[0].get("resume")
    # wandb names a folder <mode>-<second started>-<id>, plus "-<n>" when a folder of that name
    # exists already (two processes started within one second).
    assert all(re.fullmatch(rf"offline-run-\d{{8}}_\d{{6}}-{runs[0]['run_id']}(-\d+)?", d.name) for d in run_dirs)
    steps = [sorted(r["history"]["step"]["num"] for r in run_records(d) if r["type"] == "history") for d in run_dirs]
    assert steps == [[1, 2], [3, 4]]
    assert any(f"going on with W&B run {runs[0]['run_id']}" in r.getMessage() for r in caplog.records)

    assert train_driver.main(args + ["--overwrite"]) == 0
    fresh = list((tmp_path / "ck" / "wb" / "wandb").glob("offline-run-*"))
    assert len(fresh) == 1 and not fresh[0].name.endswith(runs[0]["run_id"])
