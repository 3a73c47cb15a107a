"""When training validates (every ``--val_freq`` samples, every ``--val_epoch_freq`` epochs),
where the figures go (the reporter's metrics entry, handed in), the best checkpoint, and
``--early_stop``: the count of validations since the best (``TrainState.validations_since_best``)
and the request to end the run once it reaches N, which the loop carries out."""
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
                 rank_samples_per_epoch: int = 1, early_stop: int = 0) -> None:
        self.validator, self.every_samples, self.every_epochs = validator, every_samples, every_epochs
        self.world_size, self.rank_samples_per_epoch = world_size, rank_samples_per_epoch
        self.report, self.saver, self.best = report, saver, best
        self.last_step = -1   # a step validated after it is not validated again at the epoch's end
        self.early_stop = early_stop   # N validations in a row that do not beat the best end the run (0: off)
        self.stopping = False          # set by the validation that reached N; read by the loop

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
            self.count_since_best(self.best, metrics, state, epoch,
                                  lambda extra: self.saver.save(model, state, BEST_LABEL, losses, extra=extra))

    def count_since_best(self, best: BestKeeper, metrics: Mapping[str, float], state: TrainState, epoch: int,
                         save: Callable[[dict[str, Any]], None]) -> None:
        """Keep ``best`` and count the validations since it. A tie is no improvement. Every rank
        holds the same figures (validation reduces them across ranks) and the same count (saved
        with the counters), so every rank sets ``stopping`` at the same step."""

        def save_best(extra: dict[str, Any]) -> None:
            state.validations_since_best = 0   # best.pt's counters: no validation since itself
            save(extra)
        if best.consider(metrics, state.step, epoch, save_best) or best.replays_best(metrics, state.step):
            state.validations_since_best = 0
            return
        state.validations_since_best += 1
        if self.early_stop and state.validations_since_best >= self.early_stop:
            self.stopping = True
            record = best.best
            where = (f"its best {record.value:.4f} (step {record.step})" if record is not None
                     else "a finite value")
            log.info("early stop: %s has not improved on %s in %d validations (--early_stop %d); "
                     "the run ends after step %d", best.metric, where, state.validations_since_best,
                     self.early_stop, state.step)
