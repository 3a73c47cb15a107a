"""train.py talks to a real visdom server, and trains on without one."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

import train as train_driver
import training.loop as training_loop
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


def loss_xs(client, win: str, env: str) -> dict[str, list[float]]:
    data = json.loads(client.get_window_data(win, env=env))
    return {t["name"]: t["x"] for t in data["content"]["data"]}


def test_a_resumed_run_shows_the_whole_run(visdom_server: int, tiny_data: Path, tmp_path: Path) -> None:
    """Steps 1-2, then a resume for steps 3-4: the windows hold all four points (the resume draws
    the loss log into them; its first point used to replace each window)."""
    args = _display_args(tiny_data, tmp_path / "ck", visdom_server)
    args[args.index("--display_env") + 1] = "resumed_e2e"
    assert train_driver.main(args + ["--max_steps", "2"]) == 0
    assert train_driver.main(args + ["--continue_train"]) == 0
    client = connect_visdom("http://127.0.0.1", visdom_server, "resumed_e2e")
    logged = [json.loads(line)["epoch_frac"] for line in (tmp_path / "ck" / "shown" / "loss_log.jsonl").read_text().splitlines()]
    assert logged == [0.5, 1.0, 1.5, 2.0]
    xs = loss_xs(client, "shown_1_losses", "resumed_e2e")
    assert sorted(xs) == ["D_fake", "D_real", "G_GAN", "G_L1"] and all(x == logged for x in xs.values()), xs
    assert loss_xs(client, "shown_1_lr", "resumed_e2e")["lr"] == logged


def test_a_server_started_during_the_run_gets_the_display(unused_loopback_port: int, tiny_data: Path,
                                                          tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    """No server at the start: one warning that says the display starts once one answers; a
    server started after step 2 (as the warning advises) gets the display, with the curves from
    step 1 on."""
    import reporting.sinks.visdom as visdom_sink
    from support.visdom_server import VisdomServer

    monkeypatch.setattr(visdom_sink, "RECONNECT_EVERY_S", 0.0)   # look at every point
    server = VisdomServer(tmp_path / "visdom", port=unused_loopback_port)
    real = training_loop.report_and_save

    def report_then_start_a_server(run, model, state, *rest) -> None:
        real(run, model, state, *rest)
        if state.step == 2:
            server.start()

    monkeypatch.setattr(training_loop, "report_and_save", report_then_start_a_server)
    try:
        with caplog.at_level(logging.INFO):
            assert train_driver.main(_display_args(tiny_data, tmp_path / "ck", unused_loopback_port)) == 0
        warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and "visdom" in r.getMessage()]
        assert len(warnings) == 1 and "the display starts once one answers there" in warnings[0]
        assert any("answers; live display is on" in r.getMessage() for r in caplog.records)
        client = connect_visdom("http://127.0.0.1", server.port, "train_e2e")
        assert loss_xs(client, "shown_1_losses", "train_e2e")["G_L1"] == [0.5, 1.0, 1.5, 2.0]
        images = json.loads(client.get_window_data("shown_1_images", env="train_e2e"))
        assert images["type"] == "image"
    finally:
        server.kill()
