"""Live display: a real visdom server gets the image and loss windows; no server never hurts."""
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

from reporting import visualizer as visualizer_module
from reporting.loss_log import LossLog, read_loss_log
from reporting.tensorboard_logger import TensorBoardLogger, TensorBoardMissingError
from reporting.visualizer import DisplayConfig, Visualizer

LOSS_NAMES = ["G_GAN", "G_L1", "D_real", "D_fake"]


def short_training_run(vis: Visualizer, exp_dir: Path, steps: int = 6, batch: int = 2) -> None:
    """What the training loop does, in miniature: step, log losses, show images, snapshot."""
    torch.manual_seed(0)
    net_G = nn.Sequential(nn.Conv2d(3, 3, 3, padding=1), nn.Tanh())
    optimizer = torch.optim.Adam(net_G.parameters(), lr=1e-2)
    real_A = torch.rand(batch, 3, 32, 32) * 2 - 1
    real_B = -real_A
    with LossLog(exp_dir / "loss_log.jsonl") as loss_log:
        for step in range(1, steps + 1):
            fake_B = net_G(real_A)
            loss_l1 = (fake_B - real_B).abs().mean()
            optimizer.zero_grad()
            loss_l1.backward()
            optimizer.step()
            losses = {"G_GAN": 0.7 / step, "G_L1": loss_l1.item(), "D_real": 0.6, "D_fake": 0.5}
            epoch, epoch_frac = 1 + (step - 1) // 3, step / 3
            loss_log.append({"epoch": epoch, "epoch_iter": step * batch, "step": step,
                             "epoch_frac": epoch_frac, "lr": 1e-2, "time_per_sample": 0.0,
                             "losses": losses})
            vis.plot_current_losses(epoch_frac, losses, step=step)
            visuals = {"real_A": real_A, "fake_B": fake_B.detach(), "real_B": real_B}
            vis.display_current_results(visuals, epoch=epoch, step=step, save_result=step % 3 == 0)
    vis.close()


def window(vis: Visualizer, win: str) -> dict:
    return json.loads(vis._vis.get_window_data(win, env=vis.cfg.env))


def test_server_gets_image_and_loss_windows_with_growing_data(visdom_server: int,
                                                              tmp_path: Path) -> None:
    with urllib.request.urlopen(f"http://127.0.0.1:{visdom_server}/", timeout=5) as response:
        assert response.status == 200

    cfg = DisplayConfig(name="tiny", exp_dir=tmp_path, server="http://127.0.0.1",
                        port=visdom_server, env="test_growing", ncols=3)
    vis = Visualizer(cfg)
    assert vis.visdom_connected
    client = vis._vis

    short_training_run(vis, tmp_path, steps=2)
    vis._vis = client  # close() lets go of the client; keep it to read the windows back
    first = {trace["name"]: trace for trace in window(vis, vis.loss_window)["content"]["data"]}
    assert sorted(first) == sorted(LOSS_NAMES)
    assert all(len(trace["x"]) == 2 for trace in first.values())

    vis.plot_current_losses(1.0, {"G_GAN": 0.1, "G_L1": 0.2, "D_real": 0.3, "D_fake": 0.4})
    grown = {trace["name"]: trace for trace in window(vis, vis.loss_window)["content"]["data"]}
    assert {name: len(trace["y"]) for name, trace in grown.items()} == {n: 3 for n in LOSS_NAMES}
    assert grown["G_GAN"]["y"][-1] == pytest.approx(0.1)
    assert grown["G_GAN"]["x"] == pytest.approx([1 / 3, 2 / 3, 1.0])

    images = window(vis, vis.image_window)
    assert images["type"] == "image"
    assert images["content"]["src"].startswith("data:image/png;base64,")
    assert images["content"]["caption"] == "real_A | fake_B | real_B"


def test_no_server_means_one_warning_with_the_command_and_training_goes_on(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, unused_loopback_port: int) -> None:
    port = unused_loopback_port  # nothing listens here
    cfg = DisplayConfig(name="tiny", exp_dir=tmp_path, server="http://127.0.0.1", port=port)
    with caplog.at_level(logging.WARNING):
        vis = Visualizer(cfg)
        short_training_run(vis, tmp_path)

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert f"python -m visdom.server -p {port} -bind_local" in warnings[0]
    assert not vis.visdom_connected
    # Everything that does not need the server still happened.
    assert len(read_loss_log(tmp_path / "loss_log.jsonl")) == 6
    assert (tmp_path / "web" / "images" / "epoch002_fake_B.png").is_file()


def test_missing_visdom_package_is_one_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "visdom", None)  # makes `import visdom` raise ImportError
    with caplog.at_level(logging.WARNING):
        vis = Visualizer(DisplayConfig(name="tiny", exp_dir=tmp_path, use_html=False))
        short_training_run(vis, tmp_path, steps=2)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "visdom is not installed" in warnings[0]


def test_server_lost_mid_run_is_one_warning_then_display_off(
        visdom_server: int, tmp_path: Path, caplog: pytest.LogCaptureFixture,
        unused_loopback_port: int) -> None:
    cfg = DisplayConfig(name="tiny", exp_dir=tmp_path, server="http://127.0.0.1",
                        port=visdom_server, env="test_lost", use_html=False)
    vis = Visualizer(cfg)
    assert vis.visdom_connected
    # Point the live client at a port where nothing listens: the next request fails.
    vis._vis.port = unused_loopback_port
    with caplog.at_level(logging.WARNING):
        short_training_run(vis, tmp_path, steps=3)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "stopped answering" in warnings[0]
    assert not vis.visdom_connected


def test_display_id_zero_and_non_main_ranks_never_connect(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args, **kwargs):
        raise AssertionError("tried to reach a visdom server")
    monkeypatch.setattr(visualizer_module, "connect_visdom", no_network)
    monkeypatch.setattr(visualizer_module, "probe_http", no_network)

    off = Visualizer(DisplayConfig(name="off", exp_dir=tmp_path / "off", display_id=0))
    short_training_run(off, tmp_path / "off", steps=3)
    assert (tmp_path / "off" / "web" / "index.html").is_file()

    rank1 = Visualizer(DisplayConfig(name="r1", exp_dir=tmp_path / "r1", use_tensorboard=True),
                       enabled=False)
    short_training_run(rank1, tmp_path / "r1", steps=3)
    # A non-main rank writes no page and no TensorBoard events.
    assert not (tmp_path / "r1" / "web").exists()
    assert not (tmp_path / "r1" / "tensorboard").exists()


def test_bad_visual_shape_is_a_clear_error(tmp_path: Path) -> None:
    vis = Visualizer(DisplayConfig(name="t", exp_dir=tmp_path, display_id=0))
    with pytest.raises(ValueError, match="C = 1 or 3"):
        vis.display_current_results({"flat": torch.zeros(1, 8, 8)}, epoch=1, step=1,
                                    save_result=True)


def test_visuals_of_other_channel_counts_are_shown_by_their_first_channels(tmp_path: Path) -> None:
    # Stacked inputs (A1 + A2 -> 4 channels) and 2-channel outputs must not stop training's display.
    vis = Visualizer(DisplayConfig(name="t", exp_dir=tmp_path, display_id=0))
    four = torch.linspace(-1, 1, 4).view(1, 4, 1, 1).expand(1, 4, 8, 8)
    vis.display_current_results({"stack": four, "ab": four[:, :2]}, epoch=1, step=1, save_result=True)
    shown = np.asarray(Image.open(next((tmp_path / "web" / "images").glob("*stack*"))))
    assert shown.shape == (8, 8, 3) and shown[0, 0].tolist() == [0, 85, 170]   # (c + 1) * 127.5 of c = -1, -1/3, 1/3
    two = np.asarray(Image.open(next((tmp_path / "web" / "images").glob("*ab*"))))
    assert two[0, 0].tolist() == [0, 0, 0]


def test_tensorboard_gets_scalars_and_images(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    vis = Visualizer(DisplayConfig(name="tb", exp_dir=tmp_path, display_id=0, use_html=False,
                                   use_tensorboard=True))
    short_training_run(vis, tmp_path, steps=3)
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    tags = events.Tags()
    assert {f"loss/{name}" for name in LOSS_NAMES} <= set(tags["scalars"])
    assert {"images/real_A", "images/fake_B", "images/real_B"} <= set(tags["images"])
    assert [e.step for e in events.Scalars("loss/G_GAN")] == [1, 2, 3]


def test_missing_tensorboard_is_a_specific_error(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(TensorBoardMissingError, match="--use_tensorboard.*pip install tensorboard"):
        TensorBoardLogger(tmp_path / "tensorboard")
