"""train.py talks to a real visdom server, and trains on without one."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

import train as train_driver
from tests.pipeline_helpers import make_aligned_dataset, tiny_args
from reporting.visdom_client import connect_visdom


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_aligned_dataset(tmp_path_factory.mktemp("data"), {"train": 4})


def _display_args(data: Path, ck: Path, port: int) -> list[str]:
    args = tiny_args(data, ck, name="shown")
    args[args.index("--display_id") + 1] = "1"
    return args + ["--display_server", "http://127.0.0.1", "--display_port", str(port), "--display_env", "train_e2e",
                   "--batch_size", "2", "--print_freq", "2", "--display_freq", "2", "--update_html_freq", "2",
                   "--max_steps", "4", "--n_epochs", "2", "--n_epochs_decay", "0"]


def test_training_run_fills_image_and_loss_windows(visdom_server: int, tiny_data: Path, tmp_path: Path) -> None:
    assert train_driver.main(_display_args(tiny_data, tmp_path / "ck", visdom_server)) == 0
    client = connect_visdom("http://127.0.0.1", visdom_server, "train_e2e")
    losses = json.loads(client.get_window_data("shown_1_losses", env="train_e2e"))
    traces = {t["name"]: t for t in losses["content"]["data"]}
    assert sorted(traces) == ["D_fake", "D_real", "G_GAN", "G_L1"]
    assert all(len(t["x"]) == 4 for t in traces.values())        # one point per print, growing with steps
    assert traces["G_L1"]["x"] == sorted(traces["G_L1"]["x"])     # x = fractional epoch
    images = json.loads(client.get_window_data("shown_1_images", env="train_e2e"))
    assert images["type"] == "image" and images["content"]["caption"] == "real_A | fake_B | real_B"
    assert (tmp_path / "ck" / "shown" / "web" / "index.html").is_file()


def test_no_server_warns_once_and_training_finishes(unused_loopback_port: int, tiny_data: Path, tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert train_driver.main(_display_args(tiny_data, tmp_path / "ck", unused_loopback_port)) == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and "visdom" in r.getMessage()]
    assert len(warnings) == 1 and f"python -m visdom.server -p {unused_loopback_port} -bind_local" in warnings[0]
    assert (tmp_path / "ck" / "shown" / "latest.pt").is_file()
