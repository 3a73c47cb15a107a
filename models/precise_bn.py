"""Precise batch-norm statistics: the population mean and variance of every BatchNorm2d,
measured over training batches with the weights frozen, for ``--bn_eval precise``.

The layers themselves (models/batchnorm.py) only report their batch moments to a sink while
one is set; this module pools those moments exactly and writes the result back.
"""
from __future__ import annotations

import itertools
import logging
from typing import Any, Callable, Iterable

import torch
from torch import Tensor, nn

from models.batchnorm import batchnorm_layers

logger = logging.getLogger(__name__)


class PooledMoments:
    """Exact mean and variance of every value seen, merged batch by batch in float64.

    Merging (count, mean, M2) with Chan et al.'s pairwise update gives the statistics of the
    concatenation of all batches, not an average of per-batch variances (which would leave
    out how much the batch means themselves spread).
    """

    def __init__(self) -> None:
        self.count = 0
        self.mean: Tensor | None = None
        self.m2: Tensor | None = None

    def add(self, mean: Tensor, var: Tensor, count: int) -> None:
        mean, m2 = mean.double(), var.double() * count
        if self.mean is None:
            self.count, self.mean, self.m2 = count, mean, m2
            return
        total = self.count + count
        delta = mean - self.mean
        self.mean = self.mean + delta * (count / total)
        self.m2 = self.m2 + m2 + delta * delta * (self.count * count / total)
        self.count = total

    def unbiased_var(self) -> Tensor:
        return self.m2 / (self.count - 1)


# Training batches measured by default (--bn_precise_batches): enough that the statistics stop
# moving at the paper's batch size, a few seconds of forward passes.
PRECISE_BATCHES = 50


@torch.no_grad()
def recompute_bn_stats(model: nn.Module, batches: Iterable[Any],
                       forward: Callable[[Any], Any] | None = None, num_batches: int = PRECISE_BATCHES) -> int:
    """Replace the running statistics of every BatchNorm2d in ``model`` by population statistics.

    "Precise" means: for each layer, the exact mean and unbiased variance of all the values
    that reach it (pooled over every position of every sample of the first ``num_batches``
    batches), with the weights frozen and while each layer normalizes with batch statistics,
    as in training. Nothing is averaged with a momentum, and no running value from training
    survives. ``forward(batch)`` runs the model on one batch (default: ``model(batch)``).
    Call it with the model in the mode it will be evaluated in, so dropout is on or off as at
    test time. Under a process group each process measures its own batches (a synced layer in
    training mode pools each batch over all processes). Returns the number of layers updated;
    those layers can then be evaluated with ``eval_mode="precise"``.
    """
    if num_batches < 1:
        raise ValueError(f"recompute_bn_stats: num_batches must be at least 1, got {num_batches}")
    layers = [m for m in batchnorm_layers(model) if m.track_running_stats]
    if not layers:
        return 0
    run = forward if forward is not None else model
    sinks = {layer: PooledMoments() for layer in layers}
    for layer, sink in sinks.items():
        layer.report_moments_to(sink)
    try:
        seen = 0
        for batch in itertools.islice(batches, num_batches):
            run(batch)
            seen += 1
    finally:
        for layer in layers:
            layer.report_moments_to(None)
    if seen == 0:
        raise ValueError("recompute_bn_stats: the batch iterable was empty")

    updated = 0
    for layer, sink in sinks.items():
        if sink.count < 2:
            logger.warning("recompute_bn_stats: a BatchNorm2d(%d) saw %d value(s) per channel; left unchanged",
                           layer.num_features, sink.count)
            continue
        layer.set_population_stats(sink.mean, sink.unbiased_var())
        updated += 1
    logger.info("recomputed precise statistics of %d BatchNorm2d layer(s) over %d batch(es)", updated, seen)
    return updated
