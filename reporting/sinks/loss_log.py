"""The loss log (``loss_log.jsonl``): always on, and first, because the HTML page reads it back.

A training point is one line in the schema of reporting/loss_log.py; metrics are lines of
their own, told apart by their ``metrics`` key (readers of losses skip them)::

    {"epoch": 3, "step": 1200, "epoch_frac": 3.0, "split": "val", "metrics": {"L1": 0.21, ...}}
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from reporting.loss_log import DROPPED_NAME, LOSS_LOG_NAME, LossLog, drop_after
from reporting.sink import SINKS, MetricsPoint, Sink, SinkSpec, TrainPoint


log = logging.getLogger(__name__)


class LossLogSink(Sink):
    def __init__(self, path: Path) -> None:
        self._log = LossLog(path)

    def resume(self, step: int) -> None:
        # Before the first record of this process: the log then holds each step once.
        dropped = drop_after(self._log.path, step)
        if dropped:
            log.info("%s: %d record(s) after step %d, which this run trains again, moved to %s",
                     self._log.path.name, dropped, step, DROPPED_NAME)

    def scalars(self, point: TrainPoint) -> None:
        self._log.append({"epoch": point.epoch, "epoch_iter": point.epoch_iter, "step": point.step,
                          "epoch_frac": point.epoch_frac, "lr": point.lr, **point.timings,
                          "losses": dict(point.losses)})

    def metrics(self, point: MetricsPoint) -> None:
        self._log.append({"epoch": point.epoch, "step": point.step, "epoch_frac": point.epoch_frac,
                          "split": point.split, "metrics": dict(point.metrics)})

    def close(self) -> None:
        self._log.close()


def _add_options(group: argparse._ArgumentGroup) -> None:
    pass  # the run's record of its numbers: not optional


def _build(opt: argparse.Namespace, exp_dir: Path) -> Sink:
    return LossLogSink(exp_dir / LOSS_LOG_NAME)


SINKS.add("loss_log", SinkSpec(_add_options, _build, order=0, outputs=(LOSS_LOG_NAME, DROPPED_NAME)), help=f"<experiment>/{LOSS_LOG_NAME}")
