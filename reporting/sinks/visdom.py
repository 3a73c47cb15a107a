"""The live visdom display (on unless ``--display_id`` is 0 or less).

Windows (their ids carry the display id, so two runs with one name stay apart): the image grid,
the losses, the learning rate, the timings, and one per split of metrics; every curve against
the fractional epoch. A server that is absent at the start or goes away costs one warning;
training goes on, and a server that answers there later gets the display. Whenever the display
(re)connects, and when a run resumes, the curve windows are drawn again from the loss log, so
they show the whole run, as the HTML page does.
"""
from __future__ import annotations

import argparse
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from reporting import visdom_client
from reporting.loss_log import (LOSS_LOG_NAME, LossLogError, Series, loss_series, lr_series, metric_series,
                                read_loss_log, timing_series)
from reporting.sink import SINKS, ImagesPoint, MetricsPoint, Sink, SinkSpec, TrainPoint, to_unit_rgb
from util.argtypes import port_number, positive_int

log = logging.getLogger(__name__)

# While no server answers (none at the start, or the one there stopped): how often to look
# again (one quick probe, at a display or a loss point), so that a server started or restarted
# later gets the display.
RECONNECT_EVERY_S = 30.0


@dataclass(frozen=True)
class VisdomConfig:
    name: str
    display_id: int = 1
    server: str = "http://localhost"
    port: int = 8097
    env: str = "main"
    ncols: int = 4               # images per row in the grid; <= 0: all in one row
    loss_log: Path | None = None  # the run's loss log: the curves drawn again on (re)connecting


class VisdomSink(Sink):
    def __init__(self, cfg: VisdomConfig) -> None:
        self.cfg = cfg
        prefix = f"{cfg.name}_{cfg.display_id}"
        self.image_window = f"{prefix}_images"
        self.loss_window = f"{prefix}_losses"
        self.lr_window = f"{prefix}_lr"
        self.timing_window = f"{prefix}_timings"
        self._traces: dict[str, list[str]] = {}    # window -> names it has a line for
        self._reconnect_at: float | None = None    # when to look for a server again (None: don't)
        self._lost = False                         # a connected server stopped answering
        self._vis: Any | None = visdom_client.connect_visdom(cfg.server, cfg.port, cfg.env,
                                                             look_again_s=RECONNECT_EVERY_S)
        if self._vis is None and visdom_client.visdom_installed():
            self._reconnect_at = time.monotonic() + RECONNECT_EVERY_S

    @property
    def connected(self) -> bool:
        return self._vis is not None

    def metrics_window(self, split: str) -> str:
        return f"{self.cfg.name}_{self.cfg.display_id}_{split}_metrics"

    def resume(self, step: int) -> None:
        # The loss log has been cut at ``step`` (its sink comes first): the windows of an
        # earlier process are replaced by the run up to here.
        self._replay()

    def scalars(self, point: TrainPoint) -> None:
        if self._reconnect_if_due():
            return   # the replayed log already holds this point (its sink comes first)
        self._append(self.loss_window, point.epoch_frac, point.losses, "loss over time", "loss")
        self._append(self.lr_window, point.epoch_frac, {"lr": point.lr}, "learning rate", "lr")
        self._append(self.timing_window, point.epoch_frac, point.timings, "timings", "seconds")

    def metrics(self, point: MetricsPoint) -> None:
        if self._reconnect_if_due():
            return
        self._append(self.metrics_window(point.split), point.epoch_frac, point.metrics,
                     f"{point.split} metrics", "value")

    def images(self, point: ImagesPoint) -> None:
        if not point.live:
            return
        self._reconnect_if_due()
        grid = np.stack([to_unit_rgb(image).numpy().astype(np.float32) for image in point.images.values()])
        ncols = self.cfg.ncols if self.cfg.ncols > 0 else len(point.images)
        self._call("images", grid, nrow=ncols, win=self.image_window, padding=2,
                   opts={"title": f"{self.cfg.name} epoch {point.epoch}", "caption": " | ".join(point.images)})

    def _append(self, win: str, x: float, values: Mapping[str, float], title: str, ylabel: str) -> None:
        """One point per value into ``win``, each name its own line."""
        values = {name: float(value) for name, value in values.items()}
        if self._vis is None or not values:
            return
        # The legend names the window's lines in the order they were made (visdom renames the
        # lines by the legend each call sends), then this point's new ones.
        known = self._traces.get(win, [])
        legend = known + [name for name in values if name not in known]
        opts = {"title": f"{self.cfg.name} {title}", "xlabel": "epoch", "ylabel": ylabel, "legend": legend}
        if win not in self._traces:
            # First point: create (or replace a stale) window holding every value as its own line.
            self._call("line", Y=np.array([list(values.values())]), X=np.full((1, len(values)), float(x)),
                       win=win, opts=opts)
            if self._vis is not None:
                self._traces[win] = list(values)
            return
        for name, value in values.items():
            # A name seen for the first time (e.g. after a resume) becomes a new line.
            self._call("line", Y=np.array([value]), X=np.array([float(x)]), win=win, name=name,
                       update="append", opts=opts)
        if self._vis is not None:
            self._traces[win] = legend

    def _replay(self) -> bool:
        """Draw every curve window afresh from the loss log; False when there is none to read."""
        path = self.cfg.loss_log
        if self._vis is None or path is None or not path.is_file():
            return False
        try:
            records = read_loss_log(path)
        except LossLogError as err:
            log.warning("visdom: curves not redrawn (%s)", err)
            return False
        self._draw(self.loss_window, loss_series(records), "loss over time", "loss")
        self._draw(self.lr_window, lr_series(records), "learning rate", "lr")
        self._draw(self.timing_window, timing_series(records), "timings", "seconds")
        by_split: dict[str, Series] = {}
        for metric, splits in metric_series(records).items():
            for split, points in splits.items():
                by_split.setdefault(split, {})[metric] = points
        for split, series in by_split.items():
            self._draw(self.metrics_window(split), series, f"{split} metrics", "value")
        return True

    def _draw(self, win: str, series: Series, title: str, ylabel: str) -> None:
        """Replace ``win`` by one line per name of ``series``."""
        self._traces.pop(win, None)
        first = True
        # Every call names all the lines: visdom renames a window's lines by the legend it is sent.
        opts = {"title": f"{self.cfg.name} {title}", "xlabel": "epoch", "ylabel": ylabel, "legend": list(series)}
        for name, points in series.items():
            xs, ys = np.array([x for x, _ in points], dtype=float), np.array([y for _, y in points], dtype=float)
            if first:
                self._call("line", Y=ys, X=xs, win=win, opts=opts)
            else:
                self._call("line", Y=ys, X=xs, win=win, name=name, update="append", opts=opts)
            first = False
        if self._vis is not None and series:
            self._traces[win] = list(series)

    def _call(self, method: str, *args: Any, **kwargs: Any) -> None:
        if self._vis is None:
            return  # lost at an earlier call of the same update (one call per value)
        try:
            getattr(self._vis, method)(*args, env=self.cfg.env, **kwargs)
        except Exception as err:  # a lost server costs one warning, never the run
            log.warning("the visdom server at %s:%d stopped answering (%s); training goes on, and the "
                        "live display comes back once a server answers there again (restart it with: %s)",
                        self.cfg.server, self.cfg.port, err, visdom_client.visdom_server_command(self.cfg.port))
            self._vis = None
            self._lost = True
            self._reconnect_at = time.monotonic() + RECONNECT_EVERY_S

    def _reconnect_if_due(self) -> bool:
        """Look for a server again, quietly, at most every RECONNECT_EVERY_S seconds. Returns
        True when it connected and drew the curves from the loss log."""
        if self._reconnect_at is None or time.monotonic() < self._reconnect_at:
            return False
        self._reconnect_at = time.monotonic() + RECONNECT_EVERY_S
        if visdom_client.probe_http(self.cfg.server, self.cfg.port) != 200:
            return False
        self._vis = visdom_client.connect_visdom(self.cfg.server, self.cfg.port, self.cfg.env)
        if self._vis is None:
            return False
        self._reconnect_at = None
        self._traces = {}  # a (re)started server has no windows: create them again
        log.info("the visdom server at %s:%d answers%s", self.cfg.server, self.cfg.port,
                 " again; live display is back" if self._lost else "; live display is on")
        return self._replay()

    def close(self) -> None:
        self._vis = None


def _add_options(g: argparse._ArgumentGroup) -> None:
    g.add_argument("--display_ncols", type=positive_int, default=4, help="images per row in the visdom grid")
    g.add_argument("--display_id", type=int, default=1,
                   help="visdom window id; 0 or less (the reference's -1 included) turns visdom off")
    g.add_argument("--display_server", default="http://localhost", help="visdom server address")
    g.add_argument("--display_env", default="main", help="visdom environment")
    g.add_argument("--display_port", type=port_number, default=8097, help="visdom server port (1 to 65535)")


def _build(opt: argparse.Namespace, exp_dir: Path) -> Sink | None:
    if opt.display_id <= 0:
        return None
    return VisdomSink(VisdomConfig(name=opt.name, display_id=opt.display_id, server=opt.display_server,
                                   port=opt.display_port, env=opt.display_env, ncols=opt.display_ncols,
                                   loss_log=exp_dir / LOSS_LOG_NAME))


SINKS.add("visdom", SinkSpec(_add_options, _build, order=20), help="live display (--display_id > 0)")
