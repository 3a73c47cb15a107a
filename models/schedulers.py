"""Learning-rate policies by name (``--lr_policy``), stepped once per epoch.

Epochs are numbered from ``epoch_count`` (1 by default) to n_epochs + n_epochs_decay.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Callable

from torch.optim import Optimizer
from torch.optim import lr_scheduler

from util.registry import Registry


@dataclass(frozen=True)
class Schedule:
    """The numbers the policies read, each field filled from the option of its name
    (models/base_model.py); a policy with a number of its own adds a field here and its flag,
    not a parameter to every factory."""
    n_epochs: int
    n_epochs_decay: int
    epoch_count: int = 1        # the first epoch this run trains (a reference run going on)
    lr_decay_iters: int = 50    # the step policy's period in epochs


SchedulerFactory = Callable[[Optimizer, Schedule], object]


def linear_factor(epoch: int, n_epochs: int, n_epochs_decay: int) -> float:
    """LR multiplier during 1-based ``epoch``: 1 for the first n_epochs, then a straight line
    that would reach 0 one epoch after the last, so the last epoch still learns (at
    1/(n_epochs_decay+1) of the rate) and a one-epoch run never trains at lr 0."""
    # Never below 0: an epoch past the schedule's end (a resume that shortened it) does not
    # turn into gradient ascent.
    return max(0.0, 1.0 - max(0, epoch - n_epochs) / float(n_epochs_decay + 1))


def _linear(opt: Optimizer, s: Schedule):
    # LambdaLR's counter k starts at 0 for the first epoch trained, which is epoch_count.
    return lr_scheduler.LambdaLR(opt, lambda k: linear_factor(s.epoch_count + k, s.n_epochs, s.n_epochs_decay))


def step_factor(epoch: int, decay_iters: int) -> float:
    """LR multiplier during 1-based ``epoch``: x0.1 after every ``decay_iters`` epochs."""
    return 0.1 ** ((epoch - 1) // decay_iters)


def cosine_factor(epoch: int, n_epochs: int, n_epochs_decay: int) -> float:
    """LR multiplier during 1-based ``epoch``: half a cosine from 1 at the first epoch towards 0
    one epoch after the last (as torch's CosineAnnealingLR with T_max = all epochs)."""
    total = max(1, n_epochs + n_epochs_decay)
    return 0.5 * (1.0 + math.cos(math.pi * (epoch - 1) / total))


# The epoch-driven policies are LambdaLRs of the epoch number, so that a run that starts at
# --epoch_count e (going on from the reference's files) is at epoch e of its schedule.
def _step(opt: Optimizer, s: Schedule):
    return lr_scheduler.LambdaLR(opt, lambda k: step_factor(s.epoch_count + k, s.lr_decay_iters))


def _plateau(opt: Optimizer, s: Schedule):
    # Driven by the loss, not the epoch number: --epoch_count does not enter.
    return lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=0.2, threshold=0.01, patience=5)


def _cosine(opt: Optimizer, s: Schedule):
    return lr_scheduler.LambdaLR(opt, lambda k: cosine_factor(s.epoch_count + k, s.n_epochs, s.n_epochs_decay))


LR_POLICIES: Registry[SchedulerFactory] = Registry("--lr_policy")
LR_POLICIES.add("linear", _linear, needs_metric=False,
                help="constant for n_epochs, then linear decay over n_epochs_decay (never reaching 0)")
LR_POLICIES.add("step", _step, needs_metric=False, help="x0.1 every --lr_decay_iters epochs")
LR_POLICIES.add("plateau", _plateau, needs_metric=True,
                help="x0.2 when the epoch's mean G loss stops improving for 5 epochs")
LR_POLICIES.add("cosine", _cosine, needs_metric=False, help="cosine annealing to 0 over all epochs")


class EpochScheduler:
    """One scheduler per optimizer, stepped at the end of each epoch."""

    def __init__(self, policy: str, optimizer: Optimizer, schedule: Schedule) -> None:
        entry = LR_POLICIES.entry(policy)
        self.needs_metric: bool = entry.meta["needs_metric"]
        # This run's initial rate (--lr), before the epoch policies scale it.
        self.base_lrs = [group.get("initial_lr", group["lr"]) for group in optimizer.param_groups]
        self.scheduler = entry.obj(optimizer, schedule)
        self.optimizer = optimizer

    def step(self, metric: float | None = None) -> None:
        with warnings.catch_warnings():
            # A resume from a checkpoint saved at an epoch's last step ends that epoch before this
            # process has taken a step of its own. torch sees a scheduler step before any optimizer
            # step and warns that it skips a rate; the rates here are counted in epochs and right.
            warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step\(\)` before")
            if self.needs_metric:
                if metric is None:
                    raise ValueError("the plateau policy needs the epoch's loss to step")
                self.scheduler.step(metric)
            else:
                self.scheduler.step()

    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def state_dict(self) -> dict:
        return self.scheduler.state_dict()

    def load_state_dict(self, state: dict) -> None:
        """A checkpoint's schedule, loaded after its optimizer (whose saved rate this replaces).

        The epochs stepped always carry over. ``plateau`` from a ``plateau`` checkpoint goes on
        exactly: its rate is the optimizer's and its history (best loss, bad epochs) is the
        checkpoint's. The epoch policies set the rate of the epoch in progress from this run's
        options, so a resume that changes --n_epochs, --n_epochs_decay, --lr_policy or --lr
        trains that epoch at the new schedule's rate rather than the saved one (0 after a
        finished linear run); with the schedule unchanged it is the very number saved. A run
        that switches to ``plateau`` starts it afresh at --lr."""
        plateau_saved = "lr_lambdas" not in state
        if self.needs_metric and plateau_saved:
            self.scheduler.load_state_dict(state)
            return
        if plateau_saved or self.needs_metric:   # another policy's state: only its epoch count fits
            self.scheduler.last_epoch = state["last_epoch"]
        else:
            self.scheduler.load_state_dict(state)
        if self.needs_metric:
            rates = list(self.base_lrs)
        else:
            self.scheduler.base_lrs = list(self.base_lrs)
            epoch = self.scheduler.last_epoch
            rates = [base * factor(epoch) for factor, base in zip(self.scheduler.lr_lambdas, self.base_lrs)]
        for group, base, rate in zip(self.optimizer.param_groups, self.base_lrs, rates):
            group["lr"], group["initial_lr"] = rate, base
        self.scheduler._last_lr = list(rates)   # what get_last_lr() reports (torch keeps it there)
