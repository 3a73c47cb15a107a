"""The live visdom display (on unless ``--display_id`` is 0 or less).

Windows (their ids carry the display id, so two runs with one name stay apart): the image grid,
the losses, the learning rate, the timings, and one per split of metrics; every curve against
the fractional epoch. A server that is absent or goes away costs one warning; training goes on,
and a server that answers again later gets the display back.
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
from reporting.sink import SINKS, ImagesPoint, MetricsPoint, Sink, SinkSpec, TrainPoint, to_unit_rgb

log = logging.getLogger(__name__)

# After a server that was there stops answering: how often to look for it again (one quick
# probe, at a display or a loss point), so that a restarted server gets the display back.
RECONNECT_EVERY_S = 30.0


@dataclass(frozen=True)
class VisdomConfig:
    name: str
    display_id: int = 1
    server: str = "http://localhost"
    port: int = 8097
    env: str = "main"
    ncols: int = 4               # images per row in the grid; <= 0: all in one row


class VisdomSink(Sink):
    def __init__(self, cfg: VisdomConfig) -> None:
        self.cfg = cfg
        prefix = f"{cfg.name}_{cfg.display_id}"
        self.image_window = f"{prefix}_images"
        self.loss_window = f"{prefix}_losses"
        self.lr_window = f"{prefix}_lr"
        self.timing_window = f"{prefix}_timings"
        self._traces: dict[str, list[str]] = {}    # window -> names it has a line for
        self._reconnect_at: float | None = None    # set once a connected server stops answering
        self._vis: Any | None = visdom_client.connect_visdom(cfg.server, cfg.port, cfg.env)

    @property
    def connected(self) -> bool:
        return self._vis is not None

    def metrics_window(self, split: str) -> str:
        return f"{self.cfg.name}_{self.cfg.display_id}_{split}_metrics"

    def scalars(self, point: TrainPoint) -> None:
        self._reconnect_if_due()
        self._append(self.loss_window, point.epoch_frac, point.losses, "loss over time", "loss")
        self._append(self.lr_window, point.epoch_frac, {"lr": point.lr}, "learning rate", "lr")
        self._append(self.timing_window, point.epoch_frac, point.timings, "timings", "seconds")

    def metrics(self, point: MetricsPoint) -> None:
        self._reconnect_if_due()
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
        opts = {"title": f"{self.cfg.name} {title}", "xlabel": "epoch", "ylabel": ylabel, "legend": list(values)}
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
            self._reconnect_at = time.monotonic() + RECONNECT_EVERY_S

    def _reconnect_if_due(self) -> None:
        """Look for a lost server again, quietly, at most every RECONNECT_EVERY_S seconds."""
        if self._reconnect_at is None or time.monotonic() < self._reconnect_at:
            return
        self._reconnect_at = time.monotonic() + RECONNECT_EVERY_S
        if visdom_client.probe_http(self.cfg.server, self.cfg.port) != 200:
            return
        self._vis = visdom_client.connect_visdom(self.cfg.server, self.cfg.port, self.cfg.env)
        if self._vis is not None:
            self._reconnect_at = None
            self._traces = {}  # a restarted server has no windows: create them again
            log.info("the visdom server at %s:%d answers again; live display is back", self.cfg.server,
                     self.cfg.port)

    def close(self) -> None:
        self._vis = None


def _add_options(g: argparse._ArgumentGroup) -> None:
    g.add_argument("--display_ncols", type=_positive_int, default=4, help="images per row in the visdom grid")
    g.add_argument("--display_id", type=int, default=1,
                   help="visdom window id; 0 or less (the reference's -1 included) turns visdom off")
    g.add_argument("--display_server", default="http://localhost", help="visdom server address")
    g.add_argument("--display_env", default="main", help="visdom environment")
    g.add_argument("--display_port", type=_port, default=8097, help="visdom server port (1 to 65535)")


def _whole(text: str, wanted: str) -> int:
    try:
        return int(text)
    except ValueError:   # argparse would name this function in its message
        raise argparse.ArgumentTypeError(f"must be {wanted}, got '{text}'") from None


def _positive_int(text: str) -> int:
    value = _whole(text, "a positive integer")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _port(text: str) -> int:
    value = _whole(text, "a port number from 1 to 65535")
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number from 1 to 65535, got {text}")
    return value


def _build(opt: argparse.Namespace, exp_dir: Path) -> Sink | None:
    if opt.display_id <= 0:
        return None
    return VisdomSink(VisdomConfig(name=opt.name, display_id=opt.display_id, server=opt.display_server,
                                   port=opt.display_port, env=opt.display_env, ncols=opt.display_ncols))


SINKS.add("visdom", SinkSpec(_add_options, _build, order=20), help="live display (--display_id > 0)")
