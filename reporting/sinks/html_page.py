"""The training page, ``<experiment>/web/index.html`` (off with ``--no_html``).

Top to bottom: the loss curves, the learning rate and timings, the metrics of each split (when
any were reported), then the kept snapshots of every epoch, newest first. The curves are drawn
from the loss log, the run's one record of its numbers, so a resumed run's page shows the
whole run; the page is rewritten at each snapshot and at each metrics report.
"""
from __future__ import annotations

import argparse
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from reporting.html import HTMLPage, ImageCell
from reporting.images import save_image
from reporting.loss_log import (LOSS_LOG_NAME, LossLogError, loss_series, lr_series, metric_series, read_loss_log,
                                timing_series)
from reporting.plot_losses import plot_loss_curves, plot_panels
from reporting.sink import SINKS, ImagesPoint, MetricsPoint, Sink, SinkSpec

log = logging.getLogger(__name__)

FOLDER = "web"   # the page, in the experiment folder
LOSS_PLOT_NAME = "loss_curves.png"
SCHEDULE_PLOT_NAME = "schedule_curves.png"
METRICS_PLOT_NAME = "metrics_curves.png"
PLOT_WIDTH_PX = 800  # the plots' native width (8 in at 100 dpi): shown unscaled
_SNAPSHOT = re.compile(r"^epoch(\d+)_(.+)\.png$")


@dataclass(frozen=True)
class PageConfig:
    name: str
    exp_dir: Path
    winsize: int = 256           # image width on the page, in pixels


class HTMLPageSink(Sink):
    def __init__(self, cfg: PageConfig) -> None:
        self.cfg = cfg
        self.web_dir = Path(cfg.exp_dir) / FOLDER
        self.image_dir = self.web_dir / "images"
        self.image_dir.mkdir(parents=True, exist_ok=True)
        self._label_order: list[str] = []
        self._drawn: dict[str, object] = {}   # each plot's file name -> the data it shows

    def images(self, point: ImagesPoint) -> None:
        if not point.snapshot:
            return
        for label, image in point.images.items():
            # Snapshots are RGB files, a grey (C = 1) visual included, as the live display shows it.
            rgb = image.expand(3, -1, -1) if image.shape[0] == 1 else image
            save_image(rgb, self.image_dir / snapshot_name(point.epoch, label))
        self._label_order = list(point.images)
        self.write_page()

    def metrics(self, point: MetricsPoint) -> None:
        self.write_page()

    def resume(self, step: int) -> None:
        # Redrawn from the loss log as the resume cut it (the loss log's sink comes first).
        if (self.web_dir / "index.html").is_file():
            self.write_page()

    def write_page(self) -> Path:
        page = HTMLPage(self.web_dir, f"Experiment name = {self.cfg.name}", refresh=60)
        for header, plot in self._draw_plots():
            page.add_header(header, level=2)
            page.add_images([[ImageCell(plot.name, "")]], width=PLOT_WIDTH_PX)
        for epoch, labels in sorted(self._saved_snapshots().items(), reverse=True):
            page.add_header(f"epoch [{epoch}]", level=2)
            cells = [ImageCell(f"images/{snapshot_name(epoch, label)}", label) for label in labels]
            page.add_images([cells], width=self.cfg.winsize)
        return page.save()

    def _draw_plots(self) -> list[tuple[str, Path]]:
        log_path = Path(self.cfg.exp_dir) / LOSS_LOG_NAME
        if not log_path.is_file():
            return []
        try:
            records = read_loss_log(log_path)
        except LossLogError as err:
            log.warning("loss plot skipped: %s", err)
            return []
        plots = []
        losses = loss_series(records)
        if any("losses" in record for record in records):
            plots.append(("loss curves", self._plot(LOSS_PLOT_NAME, losses, lambda path: plot_loss_curves(
                records, path, title=self.cfg.name))))
        schedule = {"learning rate": lr_series(records), "seconds per sample": timing_series(records)}
        schedule = {title: lines for title, lines in schedule.items() if lines}
        if schedule:
            plots.append(("learning rate and timings",
                          self._plot(SCHEDULE_PLOT_NAME, schedule, lambda path: plot_panels(schedule, path))))
        metrics = metric_series(records)
        if metrics:
            plots.append(("metrics", self._plot(METRICS_PLOT_NAME, metrics, lambda path: plot_panels(metrics, path))))
        return plots

    def _plot(self, name: str, shown: object, draw: Callable[[Path], Path]) -> Path:
        """``draw`` the plot ``name`` unless it already shows ``shown``: a snapshot and a metrics
        report of one step rewrite the page twice, and drawing is most of a page's cost (~0.2 s a
        plot)."""
        path = self.web_dir / name
        if self._drawn.get(name) == shown and path.is_file():
            return path
        drawn = draw(path)
        self._drawn[name] = shown
        return drawn

    def _saved_snapshots(self) -> dict[int, list[str]]:
        # Read back from disk rather than remembered, so a resumed run's page keeps the
        # epochs written before the restart.
        by_epoch: dict[int, list[str]] = {}
        for path in self.image_dir.glob("epoch*_*.png"):
            match = _SNAPSHOT.match(path.name)
            if match:
                by_epoch.setdefault(int(match.group(1)), []).append(match.group(2))
        rank = {label: i for i, label in enumerate(self._label_order)}
        for labels in by_epoch.values():
            labels.sort(key=lambda label: (rank.get(label, len(rank)), label))
        return by_epoch


def snapshot_name(epoch: int, label: str) -> str:
    # Labels come from the model's visual names; keep them out of other folders.
    safe_label = label.replace("/", "_").replace("\\", "_")
    return f"epoch{epoch:03d}_{safe_label}.png"


def _add_options(g: argparse._ArgumentGroup) -> None:
    g.add_argument("--no_html", action="store_true", help="don't write the training HTML page")


def _build(opt: argparse.Namespace, exp_dir: Path) -> Sink | None:
    if opt.no_html:
        return None
    return HTMLPageSink(PageConfig(name=opt.name, exp_dir=exp_dir, winsize=opt.display_winsize))


SINKS.add("html", SinkSpec(_add_options, _build, order=10, outputs=(FOLDER,)), help="the training page (off with --no_html)")
