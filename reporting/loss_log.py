"""The run's structured metrics file: one JSON object per line (``loss_log.jsonl``).

Plots, the HTML page and the TensorBoard mirror are all drawn from this file, so it is the one
place a run's numbers live. Each record is written and flushed on its own, so a crash loses at
most the line being written; the reader forgives exactly that one torn last line.

A resumed run goes on from its checkpoint's step: :func:`drop_after` takes the records after that
step (written by a process that was killed later, or before a resume from an earlier
checkpoint) out of the log, into ``loss_log.dropped.jsonl``, so that every step is in the log
once and the curves drawn from it do not double back.

Record schema: a training point, whose other top-level numbers are timings in seconds::

    {"epoch": int, "epoch_iter": int, "step": int, "epoch_frac": float, "lr": float,
     "time_per_sample": float, "data_time": float, "losses": {"G_GAN": float, "G_L1": float, ...}}

and metrics measured on a split (e.g. validation), told apart by their ``metrics`` key::

    {"epoch": int, "step": int, "epoch_frac": float, "split": "val", "metrics": {"L1": float, ...}}
"""
from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any, TextIO

from util.errors import UserError

log = logging.getLogger(__name__)

LOSS_LOG_NAME = "loss_log.jsonl"
DROPPED_NAME = "loss_log.dropped.jsonl"   # beside it: what resumes took out, kept to be read
# The keys of a training point that are neither timings nor losses.
_POINT_FIELDS = frozenset({"epoch", "epoch_iter", "step", "epoch_frac", "lr", "losses"})

# name -> (x, y) points, x the fractional epoch
Series = dict[str, list[tuple[float, float]]]


class LossLogError(UserError, ValueError):
    """A loss log that cannot be read: a missing file or a corrupt line before the last."""


def _jsonable(value: Any) -> Any:
    """Turn tensors and numpy scalars into plain floats; NaN/inf become null (JSON has neither)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (bool, int, str)) or value is None:
        return value
    if hasattr(value, "item"):  # torch.Tensor / numpy scalar, without importing either here
        value = value.item()
    number = float(value)
    return number if math.isfinite(number) else None


class LossLog:
    """Appends records to a JSON-lines file, one flushed line per call."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: TextIO | None = None

    def append(self, record: dict[str, Any]) -> None:
        if self._file is None:
            # Opened on first use (append mode) so a resumed run keeps extending the same log.
            self._file = self.path.open("a", encoding="utf-8")
            self._end_torn_line()
        self._file.write(json.dumps(_jsonable(record), allow_nan=False) + "\n")
        self._file.flush()

    def _end_torn_line(self) -> None:
        # A crash mid-write leaves a last line without "\n"; appending onto it would glue a good
        # record to a broken one, and the reader would then lose both.
        assert self._file is not None
        if self.path.stat().st_size == 0:
            return
        with self.path.open("rb") as f:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                self._file.write("\n")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> "LossLog":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def drop_after(path: Path, step: int) -> int:
    """Take the records with a ``step`` after ``step`` out of the log at ``path``, and a torn
    line with them; returns how many lines went. They are appended to ``DROPPED_NAME`` beside
    it, then the log is replaced whole (a kill at any point leaves either log, never half
    of one)."""
    path = Path(path)
    if not path.is_file():
        return 0
    kept, dropped = [], []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        (dropped if _later(line, step) else kept).append(line)
    if not dropped:
        return 0
    with (path.parent / DROPPED_NAME).open("a", encoding="utf-8") as f:
        f.write("".join(f"{line}\n" for line in dropped))
        f.flush()
        os.fsync(f.fileno())
    staged = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with staged.open("w", encoding="utf-8") as f:
        f.write("".join(f"{line}\n" for line in kept))
        f.flush()
        os.fsync(f.fileno())
    os.replace(staged, path)
    return len(dropped)


def _later(line: str, step: int) -> bool:
    """A record after ``step``, or a torn line (the reader would skip it anyway)."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return _looks_torn(line)
    value = record.get("step") if isinstance(record, dict) else None
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > step


def read_loss_log(path: Path) -> list[dict[str, Any]]:
    """All records in order; a torn line is skipped with a warning, any other bad line raises."""
    path = Path(path)
    if not path.is_file():
        raise LossLogError(f"{path}: no such loss log")
    records: list[dict[str, Any]] = []
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            # A line that cannot be parsed is expected only where a crash cut a write short: the
            # last line, or a line the next run's writer closed with a newline before appending.
            if number == len(lines) or _looks_torn(line):
                log.warning("%s:%d: skipping a truncated record", path, number)
                continue
            raise LossLogError(f"{path}:{number}: not a JSON record ({err.msg})") from None
        if not isinstance(record, dict):
            raise LossLogError(f"{path}:{number}: expected a JSON object, got {type(record).__name__}")
        records.append(record)
    return records


def _looks_torn(line: str) -> bool:
    """A record that starts like one of ours but was cut off before its closing brace."""
    stripped = line.strip()
    return stripped.startswith("{") and not stripped.endswith("}")


def loss_series(records: list[dict[str, Any]]) -> Series:
    """Each loss (first-seen order) against the fractional epoch; null (non-finite) values left out."""
    series: Series = {}
    for record in records:
        if "epoch_frac" not in record:
            continue
        for name, value in record.get("losses", {}).items():
            if value is not None:
                series.setdefault(name, []).append((record["epoch_frac"], float(value)))
    return series


def timing_series(records: list[dict[str, Any]]) -> Series:
    """Each timing of the training points (seconds) against the fractional epoch."""
    series: Series = {}
    for record in records:
        if "losses" not in record or "epoch_frac" not in record:
            continue
        for key, value in record.items():
            if key not in _POINT_FIELDS and isinstance(value, (int, float)) and not isinstance(value, bool):
                series.setdefault(key, []).append((record["epoch_frac"], float(value)))
    return series


def lr_series(records: list[dict[str, Any]]) -> Series:
    points = [(r["epoch_frac"], float(r["lr"])) for r in records
              if "losses" in r and r.get("lr") is not None and "epoch_frac" in r]
    return {"lr": points} if points else {}


def metric_series(records: list[dict[str, Any]]) -> dict[str, Series]:
    """metric name -> split -> (x, y) points, in first-seen order; null (non-finite) values left out."""
    by_metric: dict[str, Series] = {}
    for record in records:
        for name, value in record.get("metrics", {}).items():
            if value is not None and "epoch_frac" in record:
                split = str(record.get("split", "val"))
                by_metric.setdefault(name, {}).setdefault(split, []).append((record["epoch_frac"], float(value)))
    return by_metric
