"""Training bookkeeping: the counters, and the checks a state passes before it may be saved
(saving and resuming it: engine/checkpoint/)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import torch

from util.errors import UserError


class DivergedError(UserError, RuntimeError):
    """A loss became NaN or infinite: nothing is saved past this point."""


@dataclass
class TrainState:
    epoch: int = 1           # the epoch being trained (1-based)
    epoch_samples: int = 0   # samples this process has taken from the current epoch
    step: int = 0            # optimization steps done
    samples: int = 0         # samples seen by all processes together
    # Validations since the one that set the best --best_metric figure (0: the last one did);
    # --early_stop ends the run when it reaches N. Saved with the counters, so a resume from any
    # checkpoint goes on counting where that state was.
    validations_since_best: int = 0

    def advance(self, local_batch: int, world_size: int) -> None:
        self.step += 1
        self.epoch_samples += local_batch
        self.samples += local_batch * world_size

    def next_epoch(self) -> None:
        self.epoch += 1
        self.epoch_samples = 0

    def epoch_frac(self, world_size: int, rank_samples_per_epoch: int) -> float:
        """Where training is in epochs (1.5: half-way through the second); the x of every curve."""
        return self.epoch - 1 + self.epoch_samples * world_size / max(rank_samples_per_epoch * world_size, 1)


def crossed(before: int, after: int, every: int) -> bool:
    """Did a counter going from ``before`` to ``after`` pass a multiple of ``every``?"""
    return after // every > before // every


def check_finite(losses: Mapping[str, torch.Tensor], step: int) -> None:
    for name, value in losses.items():
        if not math.isfinite(float(value)):
            raise DivergedError(f"training diverged at step {step}: {name} is {float(value)}; "
                                "the checkpoints saved before this point are kept")


def check_finite_weights(nets: Mapping[str, torch.nn.Module], step: int) -> None:
    """A step whose gradients overflowed leaves NaN weights behind a loss that was still finite:
    the weights themselves are checked before they may replace a checkpoint."""
    for name, net in nets.items():
        for key, param in net.named_parameters():
            if not bool(torch.isfinite(param).all()):
                raise DivergedError(f"training diverged at step {step}: {name}.{key} holds nan or inf values; "
                                    "the checkpoints saved before this point are kept")
