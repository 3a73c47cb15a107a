"""Live display: a real visdom server gets the image and curve windows; no server never hurts."""
from __future__ import annotations

import json
import logging
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from reporting import visdom_client
from reporting.loss_log import LOSS_LOG_NAME, read_loss_log
from reporting.reporter import Reporter, build_reporter
from reporting.sink import TrainPoint
from reporting.sinks.html_page import HTMLPageSink, PageConfig
from reporting.sinks.loss_log import LossLogSink
from reporting.sinks.tensorboard import TensorBoardMissingError, TensorBoardSink
from reporting.sinks.visdom import VisdomConfig, VisdomSink
from tests.pipeline_helpers import tiny_args
from options.parse import parse_options

LOSS_NAMES = ["G_GAN", "G_L1", "D_real", "D_fake"]


def short_training_run(reporter: Reporter, steps: int = 6, batch: int = 2) -> None:
    """What the training loop does, in miniature: step, report losses, show images, snapshot."""
    torch.manual_seed(0)
    net_G = nn.Sequential(nn.Conv2d(3, 3, 3, padding=1), nn.Tanh())
    optimizer = torch.optim.Adam(net_G.parameters(), lr=1e-2)
    real_A = torch.rand(batch, 3, 32, 32) * 2 - 1
    real_B = -real_A
    for step in range(1, steps + 1):
        fake_B = net_G(real_A)
        loss_l1 = (fake_B - real_B).abs().mean()
        optimizer.zero_grad()
        loss_l1.backward()
        optimizer.step()
        losses = {"G_GAN": 0.7 / step, "G_L1": loss_l1.item(), "D_real": 0.6, "D_fake": 0.5}
        epoch, epoch_frac = 1 + (step - 1) // 3, step / 3
        reporter.report_losses(TrainPoint(epoch=epoch, epoch_iter=step * batch, step=step, epoch_frac=epoch_frac,
                                          lr=1e-2 / step, losses=losses,
                                          timings={"time_per_sample": 0.01 * step, "data_time": 0.001}))
        visuals = {"real_A": real_A, "fake_B": fake_B.detach(), "real_B": real_B}
        reporter.report_images(visuals, epoch=epoch, step=step, snapshot=step % 3 == 0)
    reporter.close()


def visdom_sink(port: int, env: str, **kw) -> VisdomSink:
    return VisdomSink(VisdomConfig(name="tiny", server="http://127.0.0.1", port=port, env=env, **kw))


def window(sink: VisdomSink, client, win: str) -> dict:
    return json.loads(client.get_window_data(win, env=sink.cfg.env))


def traces(sink: VisdomSink, client, win: str) -> dict[str, dict]:
    return {trace["name"]: trace for trace in window(sink, client, win)["content"]["data"]}


def test_server_gets_image_and_curve_windows_with_growing_data(visdom_server: int) -> None:
    with urllib.request.urlopen(f"http://127.0.0.1:{visdom_server}/", timeout=5) as response:
        assert response.status == 200
    sink = visdom_sink(visdom_server, "test_growing", ncols=3)
    assert sink.connected
    client = sink._vis

    short_training_run(Reporter([sink]), steps=2)
    first = traces(sink, client, sink.loss_window)
    assert sorted(first) == sorted(LOSS_NAMES)
    assert all(len(trace["x"]) == 2 for trace in first.values())
    # The learning rate and the timings have windows of their own, one point per report.
    assert traces(sink, client, sink.lr_window)["lr"]["y"] == pytest.approx([1e-2, 5e-3])
    assert traces(sink, client, sink.timing_window)["time_per_sample"]["y"] == pytest.approx([0.01, 0.02])

    sink._vis = client  # close() lets go of the client; take it back to report more
    Reporter([sink]).report_losses(TrainPoint(epoch=1, epoch_iter=6, step=3, epoch_frac=1.0, lr=1e-3,
                                              losses={"G_GAN": 0.1, "G_L1": 0.2, "D_real": 0.3, "D_fake": 0.4}))
    grown = traces(sink, client, sink.loss_window)
    assert {name: len(trace["y"]) for name, trace in grown.items()} == {n: 3 for n in LOSS_NAMES}
    assert grown["G_GAN"]["y"][-1] == pytest.approx(0.1)
    assert grown["G_GAN"]["x"] == pytest.approx([1 / 3, 2 / 3, 1.0])

    images = window(sink, client, sink.image_window)
    assert images["type"] == "image"
    assert images["content"]["src"].startswith("data:image/png;base64,")
    assert images["content"]["caption"] == "real_A | fake_B | real_B"


def test_metrics_get_a_window_per_split_against_the_epoch(visdom_server: int) -> None:
    sink = visdom_sink(visdom_server, "test_metrics")
    client = sink._vis
    reporter = Reporter([sink])
    reporter.report_losses(TrainPoint(epoch=2, epoch_iter=4, step=8, epoch_frac=1.5, lr=1e-3, losses={"G_L1": 1.0}))
    reporter.report_metrics(8, {"PSNR": 14.5, "SSIM": 0.25})                 # at the last training point
    reporter.report_metrics(12, {"PSNR": 15.0, "SSIM": 0.3}, epoch=2, epoch_frac=2.0)
    reporter.report_metrics(12, {"PSNR": 11.0}, split="test", epoch=2, epoch_frac=2.0)
    val = traces(sink, client, sink.metrics_window("val"))
    assert val["PSNR"]["x"] == pytest.approx([1.5, 2.0]) and val["PSNR"]["y"] == pytest.approx([14.5, 15.0])
    assert val["SSIM"]["y"] == pytest.approx([0.25, 0.3])
    assert traces(sink, client, sink.metrics_window("test"))["PSNR"]["y"] == pytest.approx([11.0])


def test_no_server_means_one_warning_with_the_command_and_training_goes_on(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, unused_loopback_port: int) -> None:
    port = unused_loopback_port  # nothing listens here
    with caplog.at_level(logging.WARNING):
        sink = visdom_sink(port, "main")
        short_training_run(Reporter([LossLogSink(tmp_path / LOSS_LOG_NAME), HTMLPageSink(
            PageConfig(name="tiny", exp_dir=tmp_path)), sink]))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert f"python -m visdom.server -p {port} -bind_local" in warnings[0]
    assert not sink.connected
    # Everything that does not need the server still happened.
    assert len(read_loss_log(tmp_path / "loss_log.jsonl")) == 6
    assert (tmp_path / "web" / "images" / "epoch002_fake_B.png").is_file()


def test_missing_visdom_package_is_one_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "visdom", None)  # makes `import visdom` raise ImportError
    with caplog.at_level(logging.WARNING):
        short_training_run(Reporter([visdom_sink(8097, "main")]), steps=2)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "visdom is not installed" in warnings[0]


def test_server_lost_mid_run_is_one_warning_then_display_off(
        visdom_server: int, caplog: pytest.LogCaptureFixture, unused_loopback_port: int) -> None:
    sink = visdom_sink(visdom_server, "test_lost")
    assert sink.connected
    sink._vis.port = unused_loopback_port  # the live client now points where nothing listens
    with caplog.at_level(logging.WARNING):
        short_training_run(Reporter([sink]), steps=3)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "stopped answering" in warnings[0]
    assert not sink.connected


def test_display_id_zero_and_non_main_ranks_never_connect(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args, **kwargs):
        raise AssertionError("tried to reach a visdom server")
    monkeypatch.setattr(visdom_client, "connect_visdom", no_network)
    monkeypatch.setattr(visdom_client, "probe_http", no_network)

    def options(name: str, *extra: str):
        return parse_options(tiny_args(tmp_path / "data", tmp_path / "ck", name=name) + list(extra), is_train=True)

    off = build_reporter(options("off", "--display_id", "0"), tmp_path / "off")
    assert [type(sink) for sink in off.sinks] == [LossLogSink, HTMLPageSink]
    short_training_run(off, steps=3)
    assert (tmp_path / "off" / "web" / "index.html").is_file()

    rank1 = build_reporter(options("r1", "--display_id", "1", "--use_tensorboard"), tmp_path / "r1", enabled=False)
    assert rank1.sinks == []
    short_training_run(rank1, steps=3)
    assert not (tmp_path / "r1").exists()  # a non-main rank writes no log, page or TensorBoard events


def test_bad_visual_shape_is_a_clear_error(tmp_path: Path) -> None:
    reporter = Reporter([HTMLPageSink(PageConfig(name="t", exp_dir=tmp_path))])
    with pytest.raises(ValueError, match="C = 1 or 3"):
        reporter.report_images({"flat": torch.zeros(1, 8, 8)}, epoch=1, step=1, snapshot=True)


def test_visuals_of_other_channel_counts_are_shown_by_their_first_channels(tmp_path: Path) -> None:
    # Stacked inputs (A1 + A2 -> 4 channels) and 2-channel outputs must not stop training's display.
    reporter = Reporter([HTMLPageSink(PageConfig(name="t", exp_dir=tmp_path))])
    four = torch.linspace(-1, 1, 4).view(1, 4, 1, 1).expand(1, 4, 8, 8)
    reporter.report_images({"stack": four, "ab": four[:, :2]}, epoch=1, step=1, snapshot=True)
    shown = np.asarray(Image.open(next((tmp_path / "web" / "images").glob("*stack*"))))
    assert shown.shape == (8, 8, 3) and shown[0, 0].tolist() == [0, 85, 170]   # (c + 1) * 127.5 of c = -1, -1/3, 1/3
    two = np.asarray(Image.open(next((tmp_path / "web" / "images").glob("*ab*"))))
    assert two[0, 0].tolist() == [0, 0, 0]


def test_tensorboard_gets_every_curve_and_the_images(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    reporter = Reporter([TensorBoardSink(tmp_path / "tensorboard")])
    reporter.report_metrics(2, {"PSNR": 14.0, "L1": 0.3})
    short_training_run(reporter, steps=3)
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    tags = events.Tags()
    expected = {f"loss/{name}" for name in LOSS_NAMES} | {"lr", "time/time_per_sample", "time/data_time",
                                                          "val/PSNR", "val/L1"}
    assert expected <= set(tags["scalars"])
    assert {"images/real_A", "images/fake_B", "images/real_B"} <= set(tags["images"])
    assert [e.step for e in events.Scalars("loss/G_GAN")] == [1, 2, 3]
    assert [e.value for e in events.Scalars("lr")] == pytest.approx([1e-2, 5e-3, 1e-2 / 3])
    assert [(e.step, e.value) for e in events.Scalars("val/PSNR")] == [(2, 14.0)]


def test_missing_tensorboard_is_a_specific_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(TensorBoardMissingError, match="--use_tensorboard.*pip install tensorboard"):
        TensorBoardSink(tmp_path / "tensorboard")


def test_missing_tensorboard_refuses_before_the_run_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    import train as train_driver
    from tests.pipeline_helpers import make_aligned_dataset, tiny_args

    data = make_aligned_dataset(tmp_path / "data", {"train": 2})
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(SystemExit) as exit_info:
        train_driver.main(tiny_args(data, tmp_path / "ck") + ["--use_tensorboard", "--max_steps", "1"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == ("train.py: error: --use_tensorboard: the tensorboard package is not installed "
                   "(pip install tensorboard), or drop --use_tensorboard (see --help)")
    assert not (tmp_path / "ck").exists()
