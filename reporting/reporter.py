"""The one reporting path: the training loop reports here, and every display switched on gets it.

Display is a convenience, never a reason for training to stop: each sink turns its own
failures (a visdom server gone, W&B unable to start) into one warning. Only the main process
reports (``build_reporter(..., enabled=False)`` elsewhere builds no sink, so nothing opens a
connection or writes a file).
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Mapping, Sequence

import torch

import reporting.sinks  # noqa: F401 - fills SINKS with every display in reporting/sinks/
from reporting.sink import SINKS, ImagesPoint, MetricsPoint, Sink, SinkSpec, TrainPoint, first_samples
from util.registry import Entry

log = logging.getLogger(__name__)


class Reporter:
    def __init__(self, sinks: Sequence[Sink]) -> None:
        self.sinks = list(sinks)
        self._epoch, self._epoch_frac = 0, 0.0   # where the last training point was, for metrics

    def report_losses(self, point: TrainPoint) -> None:
        """Losses, learning rate and timings of one logging point."""
        self._epoch, self._epoch_frac = point.epoch, point.epoch_frac
        for sink in self.sinks:
            sink.scalars(point)

    def report_metrics(self, step: int, metrics: Mapping[str, float], split: str = "val", *,
                       epoch: int | None = None, epoch_frac: float | None = None) -> None:
        """Figures measured on ``split`` at ``step`` (e.g. {"L1": 0.21, "PSNR": 14.2}).

        Without ``epoch``/``epoch_frac``, the metrics are placed where the last training point
        was, which is where a validation run between steps belongs."""
        point = MetricsPoint(step=step, epoch=self._epoch if epoch is None else epoch,
                             epoch_frac=self._epoch_frac if epoch_frac is None else float(epoch_frac),
                             split=split, metrics={name: float(value) for name, value in metrics.items()})
        for sink in self.sinks:
            sink.metrics(point)

    def report_images(self, visuals: Mapping[str, torch.Tensor], epoch: int, step: int,
                      snapshot: bool, live: bool = True) -> None:
        """The current visuals, (N, C, H, W) each; the first sample of each is shown.
        ``snapshot``: keep them on the HTML page; ``live``: show them on the live displays."""
        if not self.sinks or not (snapshot or live):
            return
        point = ImagesPoint(epoch=epoch, step=step, images=first_samples(visuals), snapshot=snapshot, live=live)
        for sink in self.sinks:
            sink.images(point)

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()
        self.sinks = []


def add_display_options(group: argparse._ArgumentGroup) -> None:
    """Every display's own flags, in the order the displays are called."""
    for entry in _ordered_specs():
        entry.obj.add_options(group)


def build_reporter(opt: argparse.Namespace, exp_dir: Path, enabled: bool = True,
                   resumed_at: int | None = None) -> Reporter:
    """A reporter with each display that ``opt`` switches on; with ``enabled=False``, none.
    ``resumed_at``: the step a resumed run goes on from (``Sink.resume``, called in display
    order, so the loss log is cut before the displays that read it)."""
    if not enabled:
        return Reporter([])
    sinks: list[Sink] = []
    try:
        for entry in _ordered_specs():
            sink = entry.obj.build(opt, Path(exp_dir))
            if sink is not None:
                sinks.append(sink)
                if resumed_at is not None:
                    sink.resume(resumed_at)
    except BaseException:
        for sink in sinks:   # a display that cannot start (--use_tensorboard without the package)
            sink.close()
        raise
    log.debug("displays: %s", ", ".join(type(sink).__name__ for sink in sinks))
    return Reporter(sinks)


def _ordered_specs() -> list[Entry[SinkSpec]]:
    return sorted(SINKS, key=lambda entry: entry.obj.order)
