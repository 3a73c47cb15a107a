"""A run that validates without --best_metric keeps no best checkpoint: training logs the
test.py command with --epoch latest (it logged --epoch best, which then failed), that command
scores what the last validation recorded, and test.py's missing-'best' line says why."""
from __future__ import annotations

import json
import logging
import re
import shlex
from pathlib import Path

import pytest

import test as test_driver
import train as train_driver
from reporting.loss_log import read_loss_log
from reporting.metrics import IMAGE, metric_names
from tests.pipeline_helpers import make_aligned_dataset, tiny_args


def test_the_logged_command_of_a_run_without_best_runs_and_reproduces_the_last_validation(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture) -> None:
    data = make_aligned_dataset(tmp_path / "data", {"train": 4, "val": 2})
    args = tiny_args(data, tmp_path / "ck") + ["--val_freq", "2"]
    with caplog.at_level(logging.INFO):
        assert train_driver.main(args + ["--max_steps", "2"]) == 0   # validates at its last step
    run = tmp_path / "ck" / "tiny"
    assert not (run / "best.pt").exists()
    (command,) = re.findall(r"(python test\.py .*)$", caplog.text, re.MULTILINE)
    argv = shlex.split(command)[2:]
    assert argv[argv.index("--epoch") + 1] == "latest"
    assert test_driver.main(argv + ["--gpu_ids", "-1", "--num_threads", "0",
                                    "--results_dir", str(tmp_path / "results")]) == 0
    tested = json.loads((tmp_path / "results" / "tiny" / "val_latest" / "metrics.json").read_text())
    (last,) = [r["metrics"] for r in read_loss_log(run / "loss_log.jsonl") if "metrics" in r]
    for name in metric_names(IMAGE):
        assert tested["mean"][name] == pytest.approx(last[name], rel=1e-9, abs=1e-12), name

    capsys.readouterr()
    best = list(argv)
    best[best.index("--epoch") + 1] = "best"
    assert test_driver.main(best + ["--gpu_ids", "-1", "--results_dir", str(tmp_path / "results")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("test.py: error: no generator checkpoint 'best' in")
    assert err.rstrip().endswith("this run validated without --best_metric, so it kept no best checkpoint "
                                 "(test --epoch latest); checkpoints here: latest")
