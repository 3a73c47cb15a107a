"""What a person watches during training: a live visdom display, the HTML page, TensorBoard.

Display is a convenience, never a reason for training to stop: a missing visdom package, a
server that does not answer or one that goes away mid-run each cost one warning, after which
the run goes on without live display. Only the main process shows anything (``enabled=False``
elsewhere makes every method a no-op that never opens a connection).
"""
from __future__ import annotations

import http.client
import logging
import re
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Mapping
from urllib.parse import urlparse

import numpy as np
import torch

from reporting.html import HTMLPage, ImageCell
from reporting.images import save_image
from reporting.result_files import shown_channels
from reporting.loss_log import LOSS_LOG_NAME, LossLogError, read_loss_log
from reporting.plot_losses import plot_loss_curves
from reporting.tensorboard_logger import TensorBoardLogger

log = logging.getLogger(__name__)

# Seconds to wait for a visdom server: short, because an absent server must not slow training.
PROBE_TIMEOUT_S = 1.5
# A live server answers a POST in milliseconds; this only bounds a server that hangs.
REQUEST_TIMEOUT_S = 10.0
# After a server that was there stops answering: how often to look for it again (one quick
# probe, at a display or a loss point), so that a restarted server gets the display back.
RECONNECT_EVERY_S = 30.0

VISDOM_INSTALL = "pip install 'setuptools<81' wheel && pip install --no-build-isolation visdom 'tornado<6.6'"
LOSS_PLOT_NAME = "loss_curves.png"
PLOT_WIDTH_PX = 800  # the plot's native width (8 in at 100 dpi): shown unscaled
_SNAPSHOT = re.compile(r"^epoch(\d+)_(.+)\.png$")


@dataclass
class DisplayConfig:
    name: str
    exp_dir: Path
    display_id: int = 1          # <= 0: no visdom
    server: str = "http://localhost"
    port: int = 8097
    env: str = "main"
    ncols: int = 4               # images per row in the visdom grid; <= 0: all in one row
    winsize: int = 256           # image width on the HTML page, in pixels
    use_html: bool = True
    use_tensorboard: bool = False


def visdom_server_command(port: int) -> str:
    return f"python -m visdom.server -p {port} -bind_local"


def to_display_image(image: torch.Tensor) -> np.ndarray:
    """(C, H, W) in [-1, 1], C = 1 or 3 -> (3, H, W) float32 in [0, 1]."""
    if image.dim() != 3 or image.shape[0] not in (1, 3):
        raise ValueError(f"expected a (C, H, W) image with C = 1 or 3, got shape {tuple(image.shape)}")
    shown = (image.detach().float().cpu().clamp(-1, 1) + 1) / 2
    if shown.shape[0] == 1:
        shown = shown.expand(3, -1, -1)
    return shown.numpy().astype(np.float32)


def probe_http(server: str, port: int, timeout: float = PROBE_TIMEOUT_S) -> int | None:
    """HTTP status of ``GET /`` on the server, or None when nothing answers in time."""
    parsed = urlparse(server if "://" in server else f"http://{server}")
    host = parsed.hostname or "localhost"
    conn_cls = http.client.HTTPSConnection if parsed.scheme == "https" else http.client.HTTPConnection
    conn = conn_cls(host, port, timeout=timeout)
    try:
        conn.request("GET", (parsed.path.rstrip("/") or "") + "/")
        return conn.getresponse().status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def visdom_client_class(visdom: ModuleType) -> type:
    """The stock visdom client with a timeout on every request (``REQUEST_TIMEOUT_S``).

    visdom has no public way to set one, so this overrides ``Visdom._handle_post``, the private
    method every request goes through; visdom's own docstring names it as the hook to
    override. tests/test_private_apis.py fails if a visdom release renames it, changes its
    signature or stops sending through it."""

    class _QuickVisdom(visdom.Visdom):
        def _handle_post(self, url: str, data: Any = None) -> str:
            return self.session.post(url, data=data or {}, timeout=REQUEST_TIMEOUT_S).text

    return _QuickVisdom


def connect_visdom(server: str, port: int, env: str) -> Any | None:
    """A visdom client that raises instead of retrying, or None after one warning."""
    try:
        import visdom
    except ImportError:
        log.warning("visdom is not installed, so there is no live display (install it with: %s; "
                    "or pass --display_id 0)", VISDOM_INSTALL)
        return None

    status = probe_http(server, port)
    if status is None:
        log.warning("no visdom server answers at %s:%d; training goes on without live display. "
                    "Start one with: %s   (or pass --display_id 0)",
                    server, port, visdom_server_command(port))
        return None
    if status != 200:
        hint = " (tornado 6.6 or newer makes visdom 0.2.4 answer 403: pip install 'tornado<6.6')" \
            if status == 403 else ""
        log.warning("the visdom server at %s:%d answered HTTP %d%s; training goes on without "
                    "live display", server, port, status, hint)
        return None

    # The client warns on every construction that the incoming socket (which we do not want:
    # it waits up to 5 s and we never receive events) is off.
    logging.getLogger("visdom").setLevel(logging.ERROR)
    try:
        # raise_exceptions: fail fast instead of printing tracebacks; no incoming socket: no
        # background thread and no reconnect loop.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # visdom's own logger.warn call
            return visdom_client_class(visdom)(server=server, port=port, env=env, raise_exceptions=True,
                                               use_incoming_socket=False)
    except Exception as err:  # the server vanished between probe and connect: still no crash
        log.warning("cannot talk to the visdom server at %s:%d (%s); training goes on without "
                    "live display", server, port, err)
        return None


class Visualizer:
    def __init__(self, cfg: DisplayConfig, enabled: bool = True) -> None:
        self.cfg = cfg
        self.enabled = enabled
        self.exp_dir = Path(cfg.exp_dir)
        self.web_dir = self.exp_dir / "web"
        self.image_dir = self.web_dir / "images"
        # visdom window ids; the display id keeps two runs with one name apart.
        self.image_window = f"{cfg.name}_{cfg.display_id}_images"
        self.loss_window = f"{cfg.name}_{cfg.display_id}_losses"
        self._vis: Any | None = None
        self._loss_names: list[str] = []
        self._tb: TensorBoardLogger | None = None
        self._last_step = 0
        self._reconnect_at: float | None = None  # set once a connected server stops answering
        if not enabled:
            return
        if cfg.display_id > 0:
            self._vis = connect_visdom(cfg.server, cfg.port, cfg.env)
        if cfg.use_tensorboard:
            self._tb = TensorBoardLogger(self.exp_dir / "tensorboard")
        if cfg.use_html:
            self.image_dir.mkdir(parents=True, exist_ok=True)

    @property
    def visdom_connected(self) -> bool:
        return self._vis is not None

    def display_current_results(self, visuals: Mapping[str, torch.Tensor], epoch: int, step: int,
                                save_result: bool) -> None:
        """Show the first sample of each visual; with save_result, also snapshot to the page."""
        if not self.enabled:
            return
        firsts = {label: shown_channels(batch[0]) for label, batch in visuals.items()}
        self._last_step = step
        self._reconnect_if_due()
        if self._vis is not None:
            self._show_grid(firsts, epoch)
        if self._tb is not None:
            self._tb.images(firsts, step)
        if save_result and self.cfg.use_html:
            for label, image in firsts.items():
                # Snapshots are RGB files, a grey (C = 1) visual included, as the live display shows it.
                rgb = image.expand(3, -1, -1) if image.dim() == 3 and image.shape[0] == 1 else image
                save_image(rgb, self.image_dir / snapshot_name(epoch, label))
            self.write_page(list(firsts))

    def _show_grid(self, images: Mapping[str, torch.Tensor], epoch: int) -> None:
        grid = np.stack([to_display_image(image) for image in images.values()])
        ncols = self.cfg.ncols if self.cfg.ncols > 0 else len(images)
        self._visdom_call(
            "images", grid, nrow=ncols, win=self.image_window, padding=2,
            opts={"title": f"{self.cfg.name} epoch {epoch}", "caption": " | ".join(images)})

    def plot_current_losses(self, epoch_frac: float, losses: Mapping[str, float],
                            step: int | None = None) -> None:
        """Append one point per loss to the visdom loss window (x = fractional epoch).

        ``step`` is only for TensorBoard's x axis; without it the step of the last
        display_current_results call is used.
        """
        if not self.enabled:
            return
        values = {name: float(value) for name, value in losses.items()}
        if self._tb is not None:
            self._tb.scalars(values, self._last_step if step is None else step)
        self._reconnect_if_due()
        if self._vis is None or not values:
            return
        opts = {"title": f"{self.cfg.name} loss over time", "xlabel": "epoch", "ylabel": "loss",
                "legend": list(values)}
        if not self._loss_names:
            # First point: create (or replace a stale) window holding every loss as its own line.
            self._loss_names = list(values)
            self._visdom_call("line", Y=np.array([list(values.values())]),
                              X=np.full((1, len(values)), float(epoch_frac)),
                              win=self.loss_window, opts=opts)
            return
        for name, value in values.items():
            # A name seen for the first time (e.g. after a resume) becomes a new trace.
            self._visdom_call("line", Y=np.array([value]), X=np.array([float(epoch_frac)]),
                              win=self.loss_window, name=name, update="append", opts=opts)

    def _visdom_call(self, method: str, *args: Any, **kwargs: Any) -> None:
        if self._vis is None:
            return  # lost at an earlier call of the same update (one call per loss)
        try:
            getattr(self._vis, method)(*args, env=self.cfg.env, **kwargs)
        except Exception as err:  # a lost server costs one warning, never the run
            log.warning("the visdom server at %s:%d stopped answering (%s); training goes on, and the "
                        "live display comes back once a server answers there again (restart it with: %s)",
                        self.cfg.server, self.cfg.port, err, visdom_server_command(self.cfg.port))
            self._vis = None
            self._reconnect_at = time.monotonic() + RECONNECT_EVERY_S

    def _reconnect_if_due(self) -> None:
        """Look for a lost server again, quietly, at most every RECONNECT_EVERY_S seconds."""
        if self._reconnect_at is None or time.monotonic() < self._reconnect_at:
            return
        self._reconnect_at = time.monotonic() + RECONNECT_EVERY_S
        if probe_http(self.cfg.server, self.cfg.port) != 200:
            return
        self._vis = connect_visdom(self.cfg.server, self.cfg.port, self.cfg.env)
        if self._vis is not None:
            self._reconnect_at = None
            self._loss_names = []  # a restarted server has no loss window: create it again
            log.info("the visdom server at %s:%d answers again; live display is back", self.cfg.server,
                     self.cfg.port)

    def write_page(self, label_order: list[str] | None = None) -> Path:
        """Rewrite web/index.html: the loss plot, then every saved epoch, newest first."""
        plot = self._draw_loss_plot()
        page = HTMLPage(self.web_dir, f"Experiment name = {self.cfg.name}", refresh=60)
        if plot is not None:
            page.add_header("loss curves", level=2)
            page.add_images([[ImageCell(plot.name, "")]], width=PLOT_WIDTH_PX)
        for epoch, labels in sorted(self._saved_snapshots(label_order).items(), reverse=True):
            page.add_header(f"epoch [{epoch}]", level=2)
            cells = [ImageCell(f"images/{snapshot_name(epoch, label)}", label) for label in labels]
            page.add_images([cells], width=self.cfg.winsize)
        return page.save()

    def _draw_loss_plot(self) -> Path | None:
        log_path = self.exp_dir / LOSS_LOG_NAME
        if not log_path.is_file():
            return None
        try:
            records = read_loss_log(log_path)
        except LossLogError as err:
            log.warning("loss plot skipped: %s", err)
            return None
        return plot_loss_curves(records, self.web_dir / LOSS_PLOT_NAME, title=self.cfg.name) \
            if records else None

    def _saved_snapshots(self, label_order: list[str] | None) -> dict[int, list[str]]:
        # Read back from disk rather than remembered, so a resumed run's page keeps the
        # epochs written before the restart.
        by_epoch: dict[int, list[str]] = {}
        for path in self.image_dir.glob("epoch*_*.png"):
            match = _SNAPSHOT.match(path.name)
            if match:
                by_epoch.setdefault(int(match.group(1)), []).append(match.group(2))
        rank = {label: i for i, label in enumerate(label_order or [])}
        for labels in by_epoch.values():
            labels.sort(key=lambda label: (rank.get(label, len(rank)), label))
        return by_epoch

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None
        self._vis = None


def snapshot_name(epoch: int, label: str) -> str:
    # Labels come from the model's visual names; keep them out of other folders.
    safe_label = label.replace("/", "_").replace("\\", "_")
    return f"epoch{epoch:03d}_{safe_label}.png"
