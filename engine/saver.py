"""Every checkpoint write of a training run, and the stop (a signal, or --max_steps) that ends
with one. All ranks call these at the same step: the checks and the RNG gather are collective,
and only rank 0 writes.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any, Mapping

import torch

from engine.distributed import Runtime, barrier, gather_to_all, mean_across_ranks
from engine.rng import capture_rng_state
from engine.stop import StopRequest, TrainingStopped, agreed_stop, signal_name
from engine.checkpoint import Execution, save_training
from engine.checkpoint.files import prune_numbered
from engine.train_state import TrainState, check_finite, check_finite_weights

log = logging.getLogger("train")


def reached_max_steps(max_steps: int, step: int) -> bool:
    """--max_steps N (0: no limit) is reached at step N: checked after every step, and before
    the first one of a resume, which has nothing to train when its checkpoint is already there."""
    return bool(max_steps) and step >= max_steps


class Saver:
    """``model`` below is the training model: its ``nets`` and ``state_dict()`` are saved, with
    ``execution`` (the precision and OpenMP waiting it trains with)."""

    def __init__(self, opt: argparse.Namespace, runtime: Runtime, exp_dir: Path, stop: StopRequest,
                 execution: Execution) -> None:
        self.opt, self.runtime, self.exp_dir, self.stop = opt, runtime, exp_dir, stop
        self.execution = execution
        # (epoch, step) of the last 'latest': none saved twice for one state. The epoch tells
        # apart the two states of an epoch's last step, before and after the epoch's end.
        self.latest_at: tuple[int, int] | None = None

    def save(self, model: Any, state: TrainState, label: str, losses: Mapping[str, torch.Tensor],
             extra: Mapping[str, Any] | None = None) -> None:
        """``extra``: entries recorded in both files beside the state (the best checkpoint's score)."""
        # Averaged first, so that every rank agrees on whether training diverged: a NaN run
        # stops here, before it writes over the last good checkpoint. The weights are equal
        # on every rank, so their check gives the same verdict everywhere.
        check_finite(mean_across_ranks(losses, self.runtime), state.step)
        check_finite_weights(model.nets, state.step)
        rng_per_rank = gather_to_all(capture_rng_state(), self.runtime)
        if self.runtime.is_main:
            save_training(self.exp_dir, label, model, state, self.opt, self.execution, rng_per_rank, extra)
            # Only once the new save is whole on disk.
            removed = prune_numbered(self.exp_dir, label, self.opt.keep_checkpoints)
            if removed:
                log.info("removed %s (--keep_checkpoints %d)", ", ".join(p.name for p in removed),
                         self.opt.keep_checkpoints)
        barrier(self.runtime)
        if label == "latest":
            self.latest_at = (state.epoch, state.step)

    def save_latest(self, model: Any, state: TrainState, losses: Mapping[str, torch.Tensor]) -> None:
        if self.latest_at != (state.epoch, state.step):
            self.save(model, state, "latest", losses)

    def stop_if_asked(self, model: Any, state: TrainState, losses: Mapping[str, torch.Tensor],
                      epoch_ends: bool = False) -> bool:
        """After a step: end the run on --max_steps (returns True) or on a stop signal (raises
        TrainingStopped), in both cases with 'latest' saved. A --max_steps stop at a step that
        ends its epoch (``epoch_ends``) saves nothing yet: the caller ends the epoch first (its
        validation, its '<epoch>' save, the schedule's step), then calls :meth:`stop_after_epoch`."""
        signum = agreed_stop(self.stop, self.runtime)
        reached_max = reached_max_steps(self.opt.max_steps, state.step)
        if signum is None and not reached_max:
            return False
        if signum is None and epoch_ends:
            return True
        self.save_latest(model, state, losses)
        if signum is None:
            log.info("stopped after --max_steps %d; resume with --continue_train", self.opt.max_steps)
            return True
        raise TrainingStopped(signum, f"stopped by {signal_name(signum)} after step {state.step} (epoch "
                                      f"{state.epoch}) with 'latest' saved in {self.exp_dir}; resume with the same "
                                      "command and --continue_train (or --continue_train auto)")

    def stop_after_epoch(self, model: Any, state: TrainState, losses: Mapping[str, torch.Tensor],
                         finished: bool = False) -> None:
        """The --max_steps stop of :meth:`stop_if_asked` at an epoch's last step, once that epoch
        has ended: 'latest' holds the state after its end, so a resume starts the next epoch
        (``finished``: that was the schedule's last, and there is nothing left to resume)."""
        self.save_latest(model, state, losses)
        then = "the schedule's last: training complete" if finished else "resume with --continue_train"
        log.info("stopped after --max_steps %d, at the end of epoch %d, %s", self.opt.max_steps, state.epoch - 1, then)
