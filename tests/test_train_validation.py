"""train.py with --val_freq: training is bit-identical to a run without validation, and the
figures reach every display (the loss log, visdom, TensorBoard and the HTML page), each the same
numbers at the same steps."""
from __future__ import annotations

import json
from pathlib import Path

import pytest


import train as train_driver
from engine.checkpoint import load_file
from reporting.loss_log import read_loss_log
from reporting.visdom_client import connect_visdom
from reporting.metrics import IMAGE, metric_names
from tests.pipeline_helpers import assert_same, make_aligned_dataset, tiny_args


def test_checkpoints_with_and_without_validation_are_bit_identical(tmp_path: Path) -> None:
    """Paper mode (batch statistics and dropout in G while validated), DataLoader workers on."""
    data = make_aligned_dataset(tmp_path / "data", {"train": 3, "val": 3})
    saved = {}
    for name, extra in (("plain", []), ("validated", ["--val_freq", "1", "--val_epoch_freq", "1"])):
        args = tiny_args(data, tmp_path / "ck", name=name) + ["--max_steps", "5", "--num_threads", "1",
                                                             "--amp", "none", "--lr", "0.01", *extra]
        assert train_driver.main(args) == 0
        saved[name] = load_file(tmp_path / "ck" / name / "latest.pt")
    plain, validated = saved["plain"], saved["validated"]
    steps = [r["step"] for r in read_loss_log(tmp_path / "ck" / "validated" / "loss_log.jsonl") if "metrics" in r]
    assert steps == [1, 2, 3, 4, 5]   # the end of epoch 1 (step 3) is validated once
    for key in ("nets", "optimizers", "rng_per_rank", "state", "image_pool"):
        assert_same(plain.get(key), validated.get(key), key)


def test_validation_reaches_every_display(visdom_server: int, tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    data = make_aligned_dataset(tmp_path / "data", {"train": 3, "val": 2})
    args = tiny_args(data, tmp_path / "ck", name="steered")
    args[args.index("--display_id") + 1] = "1"
    args += ["--display_server", "http://127.0.0.1", "--display_port", str(visdom_server), "--display_env", "val_e2e",
             "--use_tensorboard", "--max_steps", "4", "--print_freq", "1", "--val_freq", "2", "--lr", "0.01"]
    assert train_driver.main(args) == 0
    run = tmp_path / "ck" / "steered"

    records = [r for r in read_loss_log(run / "loss_log.jsonl") if "metrics" in r]
    assert [(r["step"], r["split"], sorted(r["metrics"])) for r in records] == [
        (2, "val", sorted(metric_names(IMAGE))), (4, "val", sorted(metric_names(IMAGE)))]
    assert [r["epoch_frac"] for r in records] == pytest.approx([2 / 3, 4 / 3])
    logged = {name: [r["metrics"][name] for r in records] for name in metric_names(IMAGE)}

    client = connect_visdom("http://127.0.0.1", visdom_server, "val_e2e")
    window = json.loads(client.get_window_data("steered_1_val_metrics", env="val_e2e"))
    traces = {t["name"]: t for t in window["content"]["data"]}
    for name, values in logged.items():
        assert traces[name]["y"] == pytest.approx(values)
        assert traces[name]["x"] == pytest.approx([2 / 3, 4 / 3])

    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    for name, values in logged.items():
        assert [(e.step, e.value) for e in events.Scalars(f"val/{name}")] == [
            (2, pytest.approx(values[0], rel=1e-6)), (4, pytest.approx(values[1], rel=1e-6))]

    page = (run / "web" / "index.html").read_text()
    assert "<h2>metrics</h2>" in page and (run / "web" / "metrics_curves.png").is_file()
