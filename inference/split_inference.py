"""How test.py runs G over a split, in the one place validation reads it from: the batch size
(every image alone where a norm layer pools over the batch), the test-time behaviour with
``--bn_eval precise``'s statistics measured first, and how each batch's dropout draws are
seeded (by its position in the split, so that ranks running every world_size-th batch draw
what one process draws).

validation (inference/validation.py) and test.py both call these, so that ``test.py --epoch
best`` scores exactly what validation recorded.
"""
from __future__ import annotations

import logging
from typing import Callable, Iterable

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from data.loader import create_dataloader
from inference.translator import set_inference_behaviour
from models.batchnorm import batchnorm_layers
from models.precise_bn import PRECISE_BATCHES, recompute_bn_stats

log = logging.getLogger(__name__)

# Training inputs (A), on the device, for --bn_eval precise; called once per measurement.
TrainBatches = Callable[[], Iterable[torch.Tensor]]


def batch_size_for(batch_size: int, net: nn.Module) -> int:
    """``batch_size``, unless G's norm layers normalize by the batch's statistics (the paper's
    test mode): then every image runs alone, as the reference's test.py runs them, so that its
    result does not depend on which images share its batch. ``net`` in its test-time behaviour."""
    if batch_size > 1 and any(layer.pools_over_batch for layer in batchnorm_layers(net)):
        return 1
    return batch_size


def training_inputs(train_set: Dataset, batch_size: int, seed: int, device: torch.device,
                    num_workers: int = 0) -> TrainBatches:
    """The batches ``--bn_eval precise`` measures on: ``train_set`` (read as at test time: no
    flips) shuffled by ``seed``; the same for test.py and validation given the same arguments
    (the loader's order and crops depend only on the seed, not on the workers)."""
    def batches() -> Iterable[torch.Tensor]:
        loader = create_dataloader(train_set, batch_size, shuffle=True, num_workers=num_workers, seed=seed)
        return (batch["A"].to(device) for batch in loader)
    return batches


def prepare_generator(net: nn.Module, eval_mode: bool, bn_eval: str, dropout: str | None, seed: int,
                      train_batches: TrainBatches | None = None,
                      precise_batches: int = PRECISE_BATCHES) -> str:
    """Put ``net`` in its test-time behaviour and return the label; with ``--eval --bn_eval
    precise``, first measure the population statistics over ``precise_batches`` training
    batches, in the behaviour G is then run in (dropout on or off as at test time), its dropout
    draws seeded with ``seed``."""
    if eval_mode and bn_eval == "precise":
        if train_batches is None:
            raise ValueError("--bn_eval precise needs training batches to measure the statistics on")
        set_inference_behaviour(net, eval_mode, "running", dropout)
        torch.manual_seed(seed)
        recompute_bn_stats(net, train_batches(), num_batches=precise_batches)
    return set_inference_behaviour(net, eval_mode, bn_eval, dropout)


def batch_seed(seed: int, batch_index: int) -> int:
    """A well-mixed 64-bit seed of (``seed``, the batch's position in the split) alone: the
    child ``batch_index`` of ``seed`` (as ``SeedSequence(seed).spawn`` numbers them), apart
    from the crops' seeds (data.transforms.sample_seed)."""
    return int(np.random.SeedSequence(seed, spawn_key=(batch_index,)).generate_state(1, dtype=np.uint64)[0])


def seed_batch(seed: int, batch_index: int) -> None:
    """Right before G runs on the split's batch ``batch_index`` (0, 1, ... in the split's
    order), in test.py and in validation alike: its dropout masks (the paper's test mode keeps
    dropout on) are then the same in both, whatever ran before (building the model, measuring
    precise statistics, other batches) and whichever rank of a several-process validation runs
    the batch (each takes every world_size-th one)."""
    torch.manual_seed(batch_seed(seed, batch_index))
