"""Batch norm whose training statistics pool the whole global batch across processes.

Unlike ``torch.nn.SyncBatchNorm`` it runs on CPU tensors too, so it works with gloo and can
be tested without a GPU; on nccl it is the same code. It only talks to other processes while
training (in eval mode each process may see a different number of batches, and a collective
that some rank never joins would hang), and only when torch.distributed is initialized with
more than one process; otherwise it is exactly the local BatchNorm2d.

Numerics: per-channel sums of x and x**2 are taken in float64 and all-reduced in one call,
so E[x^2] - E[x]^2 loses about (mean/std)^2 * 1e-16 of relative precision, negligible for
channel means up to ~1e6 standard deviations (float32 sums would break down at ~1e3).
Uneven per-process batch sizes, including an empty one, just add different counts.
"""
from __future__ import annotations

import itertools
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from models.batchnorm import BatchNorm2d
from models.batchnorm_moments import CHANNEL_DIMS


def global_moments(x: Tensor, group: Any) -> tuple[Tensor, Tensor, int]:
    """Per-channel mean and biased variance over the batches of all processes in ``group``."""
    channels = x.shape[1]
    x64 = x.detach().double()
    local = torch.cat([x64.sum(dim=CHANNEL_DIMS), (x64 * x64).sum(dim=CHANNEL_DIMS),
                       x64.new_tensor([x.numel() // channels])])
    dist.all_reduce(local, group=group)
    sums, sq_sums, count = local[:channels], local[channels:2 * channels], local[-1]
    n = max(int(count.item()), 1)  # an all-empty global batch is caught by the caller's count check
    mean = sums / n
    var = (sq_sums / n - mean * mean).clamp_min_(0)
    dtype = torch.promote_types(x.dtype, torch.float32)
    return mean.to(dtype), var.to(dtype), int(count.item())


class SyncBatchNorm2d(BatchNorm2d):
    """BatchNorm2d that, while training under a process group, normalizes over the global batch.

    Running statistics are updated from the global mean, and the unbiased variance uses the
    global count, so they stay identical on every rank. ``process_group`` defaults to the
    default (world) group.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, eval_mode: str = "running",
                 process_group: Any = None) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, eval_mode)
        self.process_group = process_group

    def _reduction_group(self) -> Any:
        if not (self.training and dist.is_available() and dist.is_initialized()):
            return None
        group = self.process_group if self.process_group is not None else dist.group.WORLD
        return group if dist.get_world_size(group) > 1 else None

    def _batch_moments(self, x: Tensor, group: Any) -> tuple[Tensor, Tensor, int]:
        if group is None:
            return super()._batch_moments(x, group)
        return global_moments(x, group)


def convert_to_sync_batchnorm(module: nn.Module, process_group: Any = None) -> nn.Module:
    """Return ``module`` with every batch-norm layer (ours or torch's) replaced by SyncBatchNorm2d.

    Parameters, buffers and our ``eval_mode`` are carried over; a module that is itself such a
    layer is replaced and returned, so always use the return value.
    """
    if isinstance(module, (BatchNorm2d, nn.BatchNorm2d)) and not isinstance(module, SyncBatchNorm2d):
        synced = SyncBatchNorm2d(module.num_features, module.eps, module.momentum, module.affine,
                                 module.track_running_stats,
                                 getattr(module, "eval_mode", "running"), process_group)
        reference = next(itertools.chain(module.parameters(), module.buffers()), None)
        if reference is not None:  # same device and float dtype as the layer it replaces
            synced.to(device=reference.device, dtype=reference.dtype)
        synced.load_state_dict(module.state_dict())
        return synced.train(module.training)
    for name, child in module.named_children():
        replaced = convert_to_sync_batchnorm(child, process_group)
        if replaced is not child:
            setattr(module, name, replaced)
    return module


def make_local(net: nn.Module) -> int:
    """Turn every synced layer of ``net`` into a plain BatchNorm2d that normalizes its own batch
    (same parameters and buffers): for work one rank does alone, such as validation's copy of G
    or the ``--amp auto`` probe's copies, where a synced layer would wait for ranks that never
    join. Returns how many layers."""
    layers = [m for m in net.modules() if isinstance(m, SyncBatchNorm2d)]
    for layer in layers:
        layer.__class__ = BatchNorm2d
    return len(layers)
