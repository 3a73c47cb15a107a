"""The JSON-lines loss log and the loss-plot tool drawn from it."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from reporting.loss_log import LossLog, LossLogError, loss_series, read_loss_log
from reporting.plot_losses import plot_loss_curves
from scripts.plot_losses import main as plot_main

REPO = Path(__file__).resolve().parents[1]


def record(step: int, **losses: float) -> dict:
    return {"epoch": 1, "epoch_iter": step, "step": step, "epoch_frac": step / 10, "lr": 2e-4,
            "time_per_sample": 0.01, "losses": losses or {"G_GAN": 1.0 / step, "G_L1": 2.0 / step}}


def test_each_append_is_on_disk_before_close(tmp_path: Path) -> None:
    path = tmp_path / "run" / "loss_log.jsonl"
    log = LossLog(path)
    log.append(record(1))
    # Read while the writer is still open: a crash right now must lose nothing.
    assert read_loss_log(path) == [record(1)]
    log.append(record(2))
    assert [r["step"] for r in read_loss_log(path)] == [1, 2]
    log.close()


def test_tensors_become_floats_and_nan_becomes_null(tmp_path: Path) -> None:
    path = tmp_path / "loss_log.jsonl"
    with LossLog(path) as log:
        log.append(record(1, G_GAN=torch.tensor(0.5), G_L1=np.float32(1.5), D_real=float("nan")))
    line = json.loads(path.read_text().strip())
    assert line["losses"] == {"G_GAN": 0.5, "G_L1": 1.5, "D_real": None}


def test_truncated_last_line_is_skipped_and_the_next_run_appends_cleanly(tmp_path: Path) -> None:
    path = tmp_path / "loss_log.jsonl"
    with LossLog(path) as log:
        log.append(record(1))
        log.append(record(2))
    torn = path.read_text()[:-15]  # a crash in the middle of writing record 2
    path.write_text(torn)
    assert [r["step"] for r in read_loss_log(path)] == [1]
    with LossLog(path) as log:  # the resumed run
        log.append(record(3))
    assert [r["step"] for r in read_loss_log(path)] == [1, 3]


def test_corrupt_line_in_the_middle_is_an_error_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "loss_log.jsonl"
    path.write_text(json.dumps(record(1)) + "\nnot json\n" + json.dumps(record(2)) + "\n")
    with pytest.raises(LossLogError, match=r"loss_log.jsonl:2"):
        read_loss_log(path)
    with pytest.raises(LossLogError, match="no such loss log"):
        read_loss_log(tmp_path / "missing.jsonl")


def test_loss_series_keep_first_seen_order() -> None:
    records = [record(1, G_GAN=1.0, G_L1=2.0), record(2, G_GAN=1.0, D_real=0.5)]
    assert list(loss_series(records)) == ["G_GAN", "G_L1", "D_real"]


def test_plot_draws_each_loss_in_its_own_colour(tmp_path: Path) -> None:
    records = [record(step) for step in range(1, 11)]
    out = plot_loss_curves(records, tmp_path / "plot.png")
    pixels = np.asarray(Image.open(out).convert("RGB")).reshape(-1, 3).astype(int)
    # matplotlib's first two line colours (blue, orange) must both be on the canvas.
    for colour in ((0x1F, 0x77, 0xB4), (0xFF, 0x7F, 0x0E)):
        assert (np.abs(pixels - colour).sum(axis=1) < 30).sum() > 20, colour


def test_cli_writes_the_default_png_for_an_experiment_dir(tmp_path: Path, capsys) -> None:
    with LossLog(tmp_path / "loss_log.jsonl") as log:
        for step in range(1, 4):
            log.append(record(step))
    assert plot_main([str(tmp_path)]) == 0
    assert (tmp_path / "web" / "loss_curves.png").stat().st_size > 1000
    assert "wrote" in capsys.readouterr().out


def test_cli_bad_input_is_one_line_and_nonzero_exit(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "scripts/plot_losses.py", str(tmp_path / "nope.jsonl")],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "nope.jsonl" in result.stderr and "Traceback" not in result.stderr
