"""When training validates (every ``--val_freq`` samples, every ``--val_epoch_freq`` epochs),
where the figures go (the reporter's metrics entry, handed in), and the best checkpoint."""
from __future__ import annotations

import logging
import time
from typing import Any, Callable, Mapping

import torch

from engine.best import BEST_LABEL, BestKeeper
from engine.saver import Saver
from engine.train_state import TrainState, crossed
from inference.validation import Validator

log = logging.getLogger("train")

# The reporter's entry point for metrics: (step, metrics, split, epoch=, epoch_frac=) -> every display.
ReportMetrics = Callable[..., None]


class ValidationHook:
    def __init__(self, validator: Validator, every_samples: int, every_epochs: int, report: ReportMetrics,
                 saver: Saver, best: BestKeeper | None = None, world_size: int = 1,
                 rank_samples_per_epoch: int = 1) -> None:
        self.validator, self.every_samples, self.every_epochs = validator, every_samples, every_epochs
        self.world_size, self.rank_samples_per_epoch = world_size, rank_samples_per_epoch
        self.report, self.saver, self.best = report, saver, best
        self.last_step = -1   # a step validated after it is not validated again at the epoch's end

    def after_step(self, before: int, model: Any, state: TrainState, losses: Mapping[str, torch.Tensor]) -> None:
        if self.every_samples and crossed(before, state.samples, self.every_samples):
            self.validate(model, state, losses, state.epoch)

    def after_epoch(self, finished_epoch: int, model: Any, state: TrainState,
                    losses: Mapping[str, torch.Tensor]) -> None:
        if self.every_epochs and finished_epoch % self.every_epochs == 0:
            self.validate(model, state, losses, finished_epoch)

    def validate(self, model: Any, state: TrainState, losses: Mapping[str, torch.Tensor], epoch: int) -> None:
        if state.step == self.last_step:
            return
        self.last_step = state.step
        started = time.perf_counter()
        metrics = self.validator(model)
        log.info("validation at step %d (%d images, %s, %.1f s): %s", state.step, self.validator.count,
                 self.validator.behaviour, time.perf_counter() - started,
                 "  ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
        self.report(state.step, metrics, "val", epoch=epoch,
                    epoch_frac=state.epoch_frac(self.world_size, self.rank_samples_per_epoch))
        if self.best is not None:
            self.best.consider(metrics, state.step, epoch,
                               lambda extra: self.saver.save(model, state, BEST_LABEL, losses, extra=extra))
