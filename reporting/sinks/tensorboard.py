"""TensorBoard (``--use_tensorboard``): every curve and the current images, into
``<experiment>/tensorboard`` (view with ``tensorboard --logdir <experiment>/tensorboard``).

``torch.utils.tensorboard`` needs the separate ``tensorboard`` package, which GPU images often
lack, so it is imported only when asked for, and its absence is one clear error: the user asked
for this display by name, unlike the live display, which is on by default.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Mapping

from reporting.sink import SINKS, ImagesPoint, MetricsPoint, Sink, SinkSpec, TrainPoint, to_unit_rgb
from util.errors import UserError

INSTALL_HINT = "pip install tensorboard"
FOLDER = "tensorboard"   # in the experiment folder


class TensorBoardMissingError(UserError, RuntimeError):
    """--use_tensorboard was given but the tensorboard package cannot be imported."""


def _missing_message() -> str:
    return f"--use_tensorboard: the tensorboard package is not installed ({INSTALL_HINT}), or drop --use_tensorboard"


class TensorBoardSink(Sink):
    """Tags: ``loss/<name>``, ``lr``, ``time/<name>``, ``<split>/<metric>``, ``images/<label>``;
    the x axis is the optimization step."""

    def __init__(self, log_dir: Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as err:  # raised by torch when the tensorboard package is missing
            raise TensorBoardMissingError(_missing_message()) from err
        self.log_dir = Path(log_dir)
        self._writer_class = SummaryWriter
        self._purge_step: int | None = None
        self._opened: Any | None = None   # opened at the first record, once a resume has said its step

    @property
    def _writer(self) -> Any:
        if self._opened is None:
            self._opened = self._writer_class(log_dir=str(self.log_dir), purge_step=self._purge_step)
        return self._opened

    def resume(self, step: int) -> None:
        # TensorBoard hides what the earlier event files hold from this step on: the stretch
        # after the checkpoint that a killed process (or an abandoned branch) wrote.
        self._purge_step = step + 1

    def scalars(self, point: TrainPoint) -> None:
        self._add_scalars(point.scalars(), point.step)

    def metrics(self, point: MetricsPoint) -> None:
        self._add_scalars(point.scalars(), point.step)
        self._writer.flush()  # rare and worth seeing at once

    def images(self, point: ImagesPoint) -> None:
        if not point.live:
            return
        for label, image in point.images.items():
            self._writer.add_image(f"images/{label}", to_unit_rgb(image), global_step=point.step, dataformats="CHW")

    def _add_scalars(self, values: Mapping[str, float], step: int) -> None:
        for tag, value in values.items():
            self._writer.add_scalar(tag, value, global_step=step)

    def close(self) -> None:
        if self._opened is not None:
            self._opened.close()


def _add_options(g: argparse._ArgumentGroup) -> None:
    g.add_argument("--use_tensorboard", action="store_true", help="also log curves and images to TensorBoard")


def _build(opt: argparse.Namespace, exp_dir: Path) -> Sink | None:
    return TensorBoardSink(exp_dir / FOLDER) if opt.use_tensorboard else None


def _check(opt: argparse.Namespace) -> str | None:
    if not getattr(opt, "use_tensorboard", False):
        return None
    try:
        import torch.utils.tensorboard  # noqa: F401 - what the sink will import
    except ImportError:
        return _missing_message()
    return None


SINKS.add("tensorboard", SinkSpec(_add_options, _build, order=30, check=_check, outputs=(FOLDER,)), help="--use_tensorboard")
