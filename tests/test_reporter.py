"""The one reporting path: what the loop reports reaches every display, and a display is one registry entry."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from options.parse import parse_options
from reporting.loss_log import LOSS_LOG_NAME, loss_series, lr_series, metric_series, read_loss_log, timing_series
from reporting.reporter import Reporter, build_reporter
from reporting.sink import SINKS, ImagesPoint, MetricsPoint, Sink, SinkSpec, TrainPoint
from reporting.sinks.html_page import HTMLPageSink, PageConfig
from reporting.sinks.loss_log import LossLogSink
from scripts.plot_losses import main as plot_main
from tests.pipeline_helpers import tiny_args
from util.registry import Entry


def point(step: int, lr: float = 2e-4) -> TrainPoint:
    return TrainPoint(epoch=1, epoch_iter=2 * step, step=step, epoch_frac=step / 4, lr=lr,
                      losses={"G_GAN": 1.0 / step, "G_L1": 2.0 / step},
                      timings={"time_per_sample": 0.5 * step, "data_time": 0.01})


def test_loss_log_lines_keep_their_schema_and_metrics_are_lines_of_their_own(tmp_path: Path) -> None:
    reporter = Reporter([LossLogSink(tmp_path / LOSS_LOG_NAME)])
    reporter.report_losses(point(1))
    reporter.report_metrics(1, {"L1": 0.3, "PSNR": 12.0})
    reporter.report_losses(point(2, lr=1e-4))
    reporter.report_metrics(2, {"L1": 0.2, "PSNR": float("nan")}, epoch=1, epoch_frac=0.75)
    reporter.close()
    lines = [json.loads(line) for line in (tmp_path / LOSS_LOG_NAME).read_text().splitlines()]
    assert lines[0] == {"epoch": 1, "epoch_iter": 2, "step": 1, "epoch_frac": 0.25, "lr": 2e-4,
                        "time_per_sample": 0.5, "data_time": 0.01, "losses": {"G_GAN": 1.0, "G_L1": 2.0}}
    # Without an epoch, metrics sit where the last training point was.
    assert lines[1] == {"epoch": 1, "step": 1, "epoch_frac": 0.25, "split": "val", "metrics": {"L1": 0.3, "PSNR": 12.0}}
    assert lines[3] == {"epoch": 1, "step": 2, "epoch_frac": 0.75, "split": "val", "metrics": {"L1": 0.2, "PSNR": None}}

    records = read_loss_log(tmp_path / LOSS_LOG_NAME)
    assert list(loss_series(records)) == ["G_GAN", "G_L1"]
    assert lr_series(records) == {"lr": [(0.25, 2e-4), (0.5, 1e-4)]}
    assert timing_series(records) == {"time_per_sample": [(0.25, 0.5), (0.5, 1.0)], "data_time": [(0.25, 0.01), (0.5, 0.01)]}
    assert metric_series(records) == {"L1": {"val": [(0.25, 0.3), (0.75, 0.2)]}, "PSNR": {"val": [(0.25, 12.0)]}}
    assert plot_main([str(tmp_path)]) == 0  # the loss-plot tool reads a log with metrics lines


def test_page_shows_loss_schedule_and_metrics_curves(tmp_path: Path) -> None:
    page = HTMLPageSink(PageConfig(name="val", exp_dir=tmp_path, winsize=32))
    reporter = Reporter([LossLogSink(tmp_path / LOSS_LOG_NAME), page])
    for step in range(1, 5):
        reporter.report_losses(point(step))
    reporter.report_metrics(4, {"PSNR": 12.0, "SSIM": 0.2})
    reporter.report_metrics(4, {"PSNR": 11.0}, split="test")
    html = (tmp_path / "web" / "index.html").read_text()  # written at the metrics report, no snapshot needed
    assert [name in html for name in ("loss_curves.png", "schedule_curves.png", "metrics_curves.png")] == [True] * 3
    reporter.report_losses(point(5))
    reporter.report_metrics(5, {"PSNR": 13.0, "SSIM": 0.25})
    reporter.close()
    pixels = np.asarray(Image.open(tmp_path / "web" / "metrics_curves.png").convert("RGB")).reshape(-1, 3).astype(int)
    # Two panels (PSNR, SSIM); PSNR has a val and a test line: matplotlib's blue and orange.
    for colour in ((0x1F, 0x77, 0xB4), (0xFF, 0x7F, 0x0E)):
        assert (np.abs(pixels - colour).sum(axis=1) < 30).sum() > 10, colour


def test_the_page_redraws_a_plot_only_when_what_it_shows_changed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A snapshot and a metrics report of one step rewrite the page twice: the second write draws
    only the metrics plot; every plot still shows the log's latest numbers (a fresh drawing of the
    final log is byte for byte the page's)."""
    from reporting.sinks import html_page
    drawn: list[str] = []
    for name in ("plot_loss_curves", "plot_panels"):
        real = getattr(html_page, name)
        monkeypatch.setattr(html_page, name, lambda *a, _real=real, **k: drawn.append(Path(a[1]).name) or _real(*a, **k))
    page = HTMLPageSink(PageConfig(name="val", exp_dir=tmp_path, winsize=32))
    reporter = Reporter([LossLogSink(tmp_path / LOSS_LOG_NAME), page])
    reporter.report_losses(point(1))
    page.write_page()
    assert drawn == ["loss_curves.png", "schedule_curves.png"]
    reporter.report_metrics(1, {"PSNR": 12.0})
    assert drawn[2:] == ["metrics_curves.png"]
    page.write_page()
    assert drawn[3:] == []
    reporter.report_losses(point(2))
    reporter.report_metrics(2, {"PSNR": 13.0})
    assert drawn[3:] == ["loss_curves.png", "schedule_curves.png", "metrics_curves.png"]
    (tmp_path / "web" / "loss_curves.png").unlink()   # a file gone from disk is drawn again
    page.write_page()
    assert drawn[6:] == ["loss_curves.png"]
    reporter.close()
    records = read_loss_log(tmp_path / LOSS_LOG_NAME)
    fresh = tmp_path / "fresh"
    from reporting.plot_losses import plot_loss_curves, plot_panels
    plot_loss_curves(records, fresh / "loss.png", title="val")
    plot_panels(metric_series(records), fresh / "metrics.png")
    assert (fresh / "loss.png").read_bytes() == (tmp_path / "web" / "loss_curves.png").read_bytes()
    assert (fresh / "metrics.png").read_bytes() == (tmp_path / "web" / "metrics_curves.png").read_bytes()


class Recorder(Sink):
    def __init__(self) -> None:
        self.seen: list[object] = []

    def scalars(self, point: TrainPoint) -> None:
        self.seen.append(point)

    def metrics(self, point: MetricsPoint) -> None:
        self.seen.append(point)

    def images(self, point: ImagesPoint) -> None:
        self.seen.append(point)


def test_a_new_display_is_one_registry_entry_with_its_own_flag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[Recorder] = []

    def add_options(group) -> None:
        group.add_argument("--use_recorder", action="store_true")

    def build(opt, exp_dir: Path) -> Sink | None:
        if not opt.use_recorder:
            return None
        built.append(Recorder())
        return built[-1]

    entry = Entry("recorder", SinkSpec(add_options, build, order=99))
    monkeypatch.setattr(SINKS, "_entries", {**SINKS._entries, "recorder": entry})
    argv = tiny_args(tmp_path / "data", tmp_path / "ck") + ["--no_html"]
    assert build_reporter(parse_options(argv, is_train=True), tmp_path / "off").sinks[-1].__class__ is LossLogSink
    reporter = build_reporter(parse_options(argv + ["--use_recorder"], is_train=True), tmp_path / "on")
    assert [type(s) for s in reporter.sinks] == [LossLogSink, Recorder]  # in order: the loss log first

    reporter.report_losses(point(3))
    reporter.report_metrics(3, {"FID": 250.0})
    reporter.report_images({"fake_B": torch.zeros(2, 3, 8, 8)}, epoch=1, step=3, snapshot=False)
    train_point, metrics_point, images_point = built[0].seen
    assert train_point.lr == 2e-4 and train_point.timings["time_per_sample"] == 1.5
    assert metrics_point == MetricsPoint(step=3, epoch=1, epoch_frac=0.75, split="val", metrics={"FID": 250.0})
    assert list(images_point.images) == ["fake_B"] and images_point.images["fake_B"].shape == (3, 8, 8)
