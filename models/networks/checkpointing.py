"""Activation checkpointing of generator stages (``--grad_checkpoint``).

A checkpointed stage keeps only its input for the backward pass and runs its forward again
there, so its intermediate activations never coexist with those of the other stages: peak
memory falls, at the price of a second forward of each stage (benchmarks/highres.py).

Two things must not change with it, so that gradients equal those without checkpointing:
dropout masks (torch.utils.checkpoint replays the RNG state of the first forward) and batch
norm's running statistics, which the recomputation would update a second time. Normalization
in training uses the batch's own statistics, so the recomputed activations are the same; only
the buffers need putting back as the first forward left them.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint


class _OnceForBuffers:
    """Calls ``stage``; from the second call on (the recomputation during backward) its buffers
    are restored afterwards to what they were before that call."""

    def __init__(self, stage: nn.Module) -> None:
        self.stage = stage
        self.calls = 0

    def __call__(self, x: Tensor) -> Tensor:
        self.calls += 1
        if self.calls == 1:
            return self.stage(x)
        buffers = list(self.stage.buffers())
        saved = [b.clone() for b in buffers]
        try:
            return self.stage(x)
        finally:
            with torch.no_grad():
                for buffer, value in zip(buffers, saved):
                    buffer.copy_(value)


def run_stage(stage: nn.Module, x: Tensor, checkpointed: bool) -> Tensor:
    """``stage(x)``, checkpointed when asked and a backward can follow."""
    if not (checkpointed and torch.is_grad_enabled()):
        return stage(x)
    # Non-reentrant: it supports inputs that need no gradient (the image) and autocast.
    return checkpoint(_OnceForBuffers(stage), x, use_reentrant=False, preserve_rng_state=True)
