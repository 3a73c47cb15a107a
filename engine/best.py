"""The best checkpoint: ``best.pt`` / ``best_net_G.pt``, the state that scored best on the
validation metric chosen with ``--best_metric``, written through the run's Saver (atomic, both
files) with the metric, its value, the step, the epoch and the validation settings it was
measured under recorded in both under ``"best"``.

A resumed run reads the record back from ``best.pt`` and replaces the file only with a better
score, so resuming never loses the best-so-far; a fresh run starts without one (the previous
run's ``best.pt`` is moved aside with its other files, engine/run_folder.py). A resume that
validates otherwise (another split, image count, behaviour, size...) or by another metric
starts a new best: its figures do not compare with the recorded one.
"""
from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from engine.checkpoint import CheckpointError, full_path, load_file
from engine.checkpoint.generator import BEST
from reporting.metric_goals import HIGHER_IS_BETTER, is_better, metric_key

log = logging.getLogger("train")

BEST_LABEL = BEST   # engine/checkpoint/generator.py names it in its missing-best message


@dataclass(frozen=True)
class BestRecord:
    metric: str      # as in the metrics dicts: "FID", "PSNR", ...
    value: float
    step: int
    epoch: int
    # What decided the figure (options/validation.py validation_settings); None in a record
    # written before settings were kept, which compares with no settings.
    settings: dict[str, Any] | None = field(default=None)

    def describe(self) -> str:
        goal = "higher" if HIGHER_IS_BETTER[self.metric] else "lower"
        return f"{self.metric} {self.value:.4f} ({goal} is better) at step {self.step}, epoch {self.epoch}"


def read_best(exp_dir: Path) -> BestRecord | None:
    """The record in ``best.pt``, or None when there is no such file or it carries none."""
    path = full_path(exp_dir, BEST_LABEL)
    if not path.is_file():
        return None
    try:
        record = load_file(path).get("best")
    except CheckpointError as err:
        log.warning("%s; the best checkpoint starts again", err)
        return None
    if not isinstance(record, Mapping):
        return None
    return BestRecord(**{k: record[k] for k in ("metric", "value", "step", "epoch", "settings") if k in record})


# Writes the checkpoint ``best`` with the given record (the Saver's save, all ranks together).
SaveBest = Callable[[dict[str, Any]], None]


def settings_change(before: Mapping[str, Any] | None, now: Mapping[str, Any]) -> str:
    """The settings that differ, e.g. "num_test 6 -> 1, phase val -> test" ("" when none)."""
    if before is None:
        return "not recorded (a best.pt from an earlier version)"
    keys = sorted(set(before) | set(now))
    return ", ".join(f"{k} {before.get(k)} -> {now.get(k)}" for k in keys if before.get(k) != now.get(k))


class BestKeeper:
    def __init__(self, metric: str, previous: BestRecord | None = None,
                 settings: Mapping[str, Any] | None = None) -> None:
        self.metric = metric_key(metric)
        self.settings = dict(settings or {})
        self.best: BestRecord | None = None
        if previous is None:
            return
        change = settings_change(previous.settings, self.settings)
        if previous.metric != self.metric:
            log.info("best.pt was chosen by %s; from now on by %s", previous.metric, self.metric)
        elif change:
            log.warning("best.pt (%s) was validated with other settings (%s); its figure does not compare with "
                        "this run's, so the best checkpoint starts again", previous.describe(), change)
        else:
            self.best = previous
            log.info("best checkpoint so far: %s", previous.describe())

    def replays_best(self, metrics: Mapping[str, float], step: int) -> bool:
        """Whether ``metrics`` at ``step`` are the recorded best's own figure: a resume from a
        checkpoint older than ``best.pt`` trains that step again and scores it again (a tie,
        not an improvement), and the validations since the best count from there, as they did
        in the run that recorded it."""
        return self.best is not None and self.best.step == step and float(metrics[self.metric]) == self.best.value

    def consider(self, metrics: Mapping[str, float], step: int, epoch: int, save: SaveBest) -> bool:
        """Save ``best`` when ``metrics`` beat the best so far; returns whether it did. Every
        rank holds the same metrics, so every rank takes the same branch."""
        value = float(metrics[self.metric])
        so_far = None if self.best is None else self.best.value
        if not math.isfinite(value) or not is_better(self.metric, value, so_far):
            return False
        record = BestRecord(self.metric, value, step, epoch, self.settings)
        save({"best": asdict(record)})
        self.best = record
        log.info("new best checkpoint (best.pt): %s", record.describe())
        return True
