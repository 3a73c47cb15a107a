"""Our BatchNorm2d: native-compatible in training, with a selectable behaviour in eval mode.

What "eval mode" means for batch norm is the most confusing choice in pix2pix, so it is a
named attribute of every layer (``eval_mode``, one of ``BN_EVAL_MODES``) instead of a side
effect of calling ``.eval()`` or not:

- ``running``: normalize with the running (exponential-average) statistics. Standard.
- ``batch``: normalize with the current batch's statistics and leave the running ones alone.
  This is what the pix2pix paper does at test time.
- ``precise``: normalize with population statistics that ``recompute_bn_stats``
  (models/precise_bn.py) measured just before, with the weights frozen.

In training mode every layer uses batch statistics and updates the running ones, exactly as
``nn.BatchNorm2d`` does, and the state_dict has the same keys and shapes, so checkpoints
interchange both ways.

Speed: with batch statistics inside one process (training, or ``batch`` at test time) the
layer calls torch's fused batch-norm kernel, which takes the statistics, normalizes, updates
the running buffers and has a fused backward, in one pass where separate reductions and
element-wise passes take several. Its statistics are float32-exact to the input's own
resolution (tested against float64). The synced path (a process group) and the
precise-statistics collection need the moments themselves: there they are reduced outside the
kernel (models/batchnorm_moments.py, or float64 sums across processes in sync_batchnorm.py)
and an autograd Function normalizes with them.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from models.batchnorm_moments import BatchNormFunction, channel_moments, per_channel
from util.registry import Registry

if TYPE_CHECKING:   # a type hint only: precise_bn.py builds on this module
    from models.precise_bn import PooledMoments

logger = logging.getLogger(__name__)

# needs_training_data: the mode measures statistics on training batches first, so only a command
# that can read the training set offers it (test.py, validation; not translate, serve, export).
BN_EVAL_MODES: Registry[str] = Registry("--bn_eval")
BN_EVAL_MODES.add("running", "running", needs_training_data=False,
                  help="normalize with the running averages kept during training (standard)")
BN_EVAL_MODES.add("batch", "batch", needs_training_data=False,
                  help="normalize with each test batch's own statistics, as the pix2pix paper does")
BN_EVAL_MODES.add("precise", "precise", needs_training_data=True,
                  help="normalize with population statistics recomputed over training batches "
                       "with frozen weights just before testing")

class BatchNorm2d(nn.Module):
    """Batch normalization over (N, H, W) of (N, C, H, W) inputs; drop-in for nn.BatchNorm2d.

    Normalizes with the biased batch variance and feeds the unbiased one into the running
    estimate; ``momentum=None`` makes the running statistics a cumulative average. Without
    ``track_running_stats`` there are no running buffers and every mode uses batch statistics.
    """

    _version = 2  # the nn.BatchNorm2d state_dict version (adds num_batches_tracked)

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True,
                 eval_mode: str = "running") -> None:
        super().__init__()
        if num_features < 1:
            raise ValueError(f"BatchNorm2d: num_features must be positive, got {num_features}")
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        self.eval_mode = eval_mode
        if affine:
            self.weight = nn.Parameter(torch.ones(num_features))
            self.bias = nn.Parameter(torch.zeros(num_features))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", torch.zeros(num_features))
            self.register_buffer("running_var", torch.ones(num_features))
            self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        # True only between recompute_bn_stats and the next change of the running buffers.
        self._precise_ready = False
        # While recompute_bn_stats runs: the accumulator this layer reports its batch moments to.
        self._moment_sink: PooledMoments | None = None

    @property
    def eval_mode(self) -> str:
        return self._eval_mode

    @eval_mode.setter
    def eval_mode(self, mode: str) -> None:
        self._eval_mode = BN_EVAL_MODES.canonical(mode)

    def report_moments_to(self, sink: PooledMoments | None) -> None:
        """While a sink is set, every forward normalizes with batch statistics, hands them to
        ``sink.add(mean, var, count)`` and leaves the running buffers alone (precise_bn.py)."""
        self._moment_sink = sink

    @torch.no_grad()
    def set_population_stats(self, mean: Tensor, unbiased_var: Tensor) -> None:
        """Running buffers := measured population statistics; enables ``eval_mode="precise"``
        until the buffers change again (a training step or a load)."""
        self.running_mean.copy_(mean)
        self.running_var.copy_(unbiased_var)
        self._precise_ready = True

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean.zero_()
            self.running_var.fill_(1)
            self.num_batches_tracked.zero_()
            self._precise_ready = False

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}, eval_mode={self.eval_mode!r}")

    # The two hooks a synced subclass changes: over which processes the batch statistics pool.
    def _reduction_group(self) -> Any:
        return None

    def _batch_moments(self, x: Tensor, group: Any) -> tuple[Tensor, Tensor, int]:
        """Per-channel mean, biased variance and the number of values they cover."""
        mean, var = channel_moments(x.detach())
        return mean, var, x.numel() // x.shape[1]

    @property
    def pools_over_batch(self) -> bool:
        """Whether, in the current mode, each output depends on the other samples of its batch
        (normalized by the batch's statistics), so that the batch size changes the results."""
        return self.training or not self.track_running_stats or self.eval_mode == "batch"

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4:
            raise ValueError(f"BatchNorm2d expects (N, C, H, W) input, got shape {tuple(x.shape)}")
        if x.shape[1] != self.num_features:
            raise ValueError(f"BatchNorm2d({self.num_features}) got an input with {x.shape[1]} channels")

        collecting = self._moment_sink is not None
        use_batch_stats = self.pools_over_batch or collecting
        if not use_batch_stats:
            return self._normalize_with_running_stats(x)

        group = self._reduction_group()
        if group is None and not collecting:
            return self._normalize_with_batch_stats(x)
        mean, var, count = self._batch_moments(x, group)
        self._check_count(x, count)
        if collecting:
            self._moment_sink.add(mean, var, count)
        elif self.training and self.track_running_stats:
            self._update_running_stats(mean, var, count)
        return BatchNormFunction.apply(x, self.weight, self.bias, mean, var, count, self.eps, group)

    def _check_count(self, x: Tensor, count: int) -> None:
        needed = 2 if self.training else 1  # the unbiased running estimate divides by count - 1
        if count < needed:
            raise ValueError(f"BatchNorm2d: batch statistics need more than {needed - 1} value(s) per "
                             f"channel, got input of shape {tuple(x.shape)}")

    def _normalize_with_batch_stats(self, x: Tensor) -> Tensor:
        """Batch statistics within this process: torch's fused kernel, which takes the
        statistics, normalizes, updates the running buffers (unbiased variance, as ours) and has
        a fused backward (double backward too), at a fraction of the cost of BatchNormFunction's
        separate passes; that Function stays for the synced and collecting paths."""
        self._check_count(x, x.numel() // x.shape[1])
        update = self.training and self.track_running_stats
        factor = 0.0
        if update:
            self.num_batches_tracked.add_(1)
            factor = (1.0 / float(self.num_batches_tracked)) if self.momentum is None else self.momentum
            self._precise_ready = False
        return torch.nn.functional.batch_norm(
            x, self.running_mean if update else None, self.running_var if update else None,
            self.weight, self.bias, training=True, momentum=factor, eps=self.eps)

    def _normalize_with_running_stats(self, x: Tensor) -> Tensor:
        if self.eval_mode == "precise" and not self._precise_ready:
            raise RuntimeError(
                "BatchNorm2d(eval_mode='precise'): the population statistics were not recomputed "
                "since the last training step or load; call models.precise_bn.recompute_bn_stats(model, batches) first")
        scale = torch.rsqrt(self.running_var + self.eps)
        if self.weight is not None:
            scale = scale * self.weight
        shift = -self.running_mean * scale
        if self.bias is not None:
            shift = shift + self.bias
        return torch.addcmul(per_channel(shift), x, per_channel(scale)).to(x.dtype)

    @torch.no_grad()
    def _update_running_stats(self, mean: Tensor, var: Tensor, count: int) -> None:
        self.num_batches_tracked.add_(1)
        if self.momentum is None:  # cumulative average over all batches so far
            factor = 1.0 / float(self.num_batches_tracked)
        else:
            factor = self.momentum
        unbiased_var = var * (count / (count - 1))
        self.running_mean.mul_(1 - factor).add_(mean.to(self.running_mean.dtype), alpha=factor)
        self.running_var.mul_(1 - factor).add_(unbiased_var.to(self.running_var.dtype), alpha=factor)
        self._precise_ready = False

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, local_metadata: dict[str, Any],
                              strict: bool, missing_keys: list[str], unexpected_keys: list[str],
                              error_msgs: list[str]) -> None:
        version = local_metadata.get("version")
        key = prefix + "num_batches_tracked"
        if self.track_running_stats and (version is None or version < 2) and key not in state_dict:
            # Checkpoints from before PyTorch 0.4.1 have no batch counter; start it at zero.
            state_dict[key] = torch.tensor(0, dtype=torch.long)
        self._precise_ready = False
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)


def batchnorm_layers(module: nn.Module) -> list[BatchNorm2d]:
    return [m for m in module.modules() if isinstance(m, BatchNorm2d)]


def set_bn_eval_mode(module: nn.Module, mode: str) -> int:
    """Set ``eval_mode`` on every one of our BatchNorm2d layers in ``module``; returns how many."""
    mode = BN_EVAL_MODES.canonical(mode)
    layers = batchnorm_layers(module)
    for layer in layers:
        layer.eval_mode = mode
    native = sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())
    if native and mode != "running":
        logger.warning("%d native torch BatchNorm layer(s) ignore --bn_eval %s", native, mode)
    return len(layers)
