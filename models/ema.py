"""An exponential moving average of the generator's weights (``--ema_decay``).

The averaged G smooths out the step-to-step oscillation of adversarial training; it is never
trained, only updated after each G step, and is what inference uses unless ``--no_ema``.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from util.errors import OptionError


class WeightAverage:
    """theta_ema <- d * theta_ema + (1 - d) * theta after each step, with the warm-up of
    TensorFlow's ExponentialMovingAverage: d = min(decay, (1 + n) / (10 + n)) at update n, so
    a short run is not dominated by the random initial weights. Buffers (batch-norm running
    statistics) are copied, not averaged: they describe the current weights' activations."""

    def __init__(self, net: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise OptionError(f"--ema_decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.updates = 0
        self.net = copy.deepcopy(net).requires_grad_(False)

    def current_decay(self) -> float:
        return min(self.decay, (1.0 + self.updates) / (10.0 + self.updates))

    @torch.no_grad()
    def update(self, net: nn.Module) -> None:
        d = self.current_decay()
        for avg, p in zip(self.net.parameters(), net.parameters(), strict=True):
            avg.lerp_(p.detach(), 1.0 - d)
        for avg_b, b in zip(self.net.buffers(), net.buffers(), strict=True):
            avg_b.copy_(b)
        self.updates += 1

    def state_dict(self) -> dict:
        return {"decay": self.decay, "updates": self.updates, "net": self.net.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.updates = int(state["updates"])
        self.net.load_state_dict(state["net"])
