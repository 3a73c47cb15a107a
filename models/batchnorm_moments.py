"""Batch normalization with statistics reduced outside torch's fused kernel: the moments of
one process's batch, and an autograd Function that normalizes with moments it is given.

models/batchnorm.py uses them where the statistics are not one process's batch alone: the
synced layer (sync_batchnorm.py), whose statistics pool every process's batch, and the
precise-statistics collection (precise_bn.py), which must see the moments themselves.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

CHANNEL_DIMS = (0, 2, 3)  # the statistics of channel c pool over batch, height and width


def per_channel(t: Tensor) -> Tensor:
    return t.view(1, -1, 1, 1)


def channel_moments(x: Tensor) -> tuple[Tensor, Tensor]:
    """Per-channel mean and biased variance of (N, C, H, W) ``x``, accurate at large means.

    On CUDA one fused ``var_mean`` kernel does it. On CPU that (Welford) reduction is several
    times slower than plain sums, so there it is two passes: a rough mean, then sums of the centred
    values, whose own mean corrects the rough one (the float32 sum alone is a few ulps off at
    channel means of 1e3).
    """
    if x.device.type == "cuda":
        var, mean = torch.var_mean(x, dim=CHANNEL_DIMS, correction=0)
        return mean, var
    rough = x.mean(dim=CHANNEL_DIMS, keepdim=True)
    centred = x - rough
    residual = centred.mean(dim=CHANNEL_DIMS)
    mean = (rough.flatten().double() + residual.double()).to(residual.dtype)
    var = (centred * centred).mean(dim=CHANNEL_DIMS) - residual * residual
    return mean, var.clamp_min_(0)


class BatchNormFunction(torch.autograd.Function):
    """y = (x - mean) * invstd * weight + bias, with mean/var given (already reduced).

    ``count`` is the number of values per channel the statistics were taken over: the local
    N*H*W, or the global one when ``group`` is a process group. With a group, the two
    per-channel gradient sums the input gradient needs are all-reduced too, because every
    process's output depends on every process's data through the shared mean and variance.
    The weight and bias gradients stay local sums, as for any other parameter under DDP.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor | None, bias: Tensor | None, mean: Tensor,
                var: Tensor, count: int, eps: float, group: Any) -> Tensor:
        invstd = torch.rsqrt(var + eps)
        scale = invstd if weight is None else invstd * weight
        shift = -mean * scale if bias is None else bias - mean * scale
        y = torch.addcmul(per_channel(shift), x, per_channel(scale))
        ctx.save_for_backward(x, weight, mean, invstd)
        ctx.count, ctx.eps, ctx.group = count, eps, group
        return y.to(x.dtype)

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        x, weight, mean, invstd = ctx.saved_tensors
        group, count = ctx.group, ctx.count
        if group is not None and torch.is_grad_enabled():
            raise RuntimeError("synced batch norm across processes has no double backward (create_graph=True, "
                               "e.g. a WGAN-GP penalty); use --norm batch, instance or group for that network")
        if torch.is_grad_enabled():
            # create_graph=True (e.g. a WGAN-GP penalty through D): rebuild the statistics from
            # x with differentiable ops so the gradient below is itself differentiable in x.
            var, mean = torch.var_mean(x, dim=CHANNEL_DIMS, correction=0)
            invstd = torch.rsqrt(var + ctx.eps)
        x_centred = x - per_channel(mean)
        sum_dy = grad_out.sum(dim=CHANNEL_DIMS)
        sum_dy_xc = (grad_out * x_centred).sum(dim=CHANNEL_DIMS)
        grad_weight = sum_dy_xc * invstd if weight is not None and ctx.needs_input_grad[1] else None
        grad_bias = sum_dy if ctx.needs_input_grad[2] else None

        grad_x = None
        if group is not None:
            # Every rank must join this all_reduce, whether or not its input needs a gradient.
            import torch.distributed as dist
            totals = torch.cat([sum_dy, sum_dy_xc]).double()
            dist.all_reduce(totals, group=group)
            sum_dy, sum_dy_xc = totals.to(sum_dy.dtype).chunk(2)
        if ctx.needs_input_grad[0]:
            a = invstd if weight is None else weight * invstd
            # dx = a * (dy - mean(dy) - x_hat * mean(dy * x_hat)), means over all `count` values
            k_mean = a * sum_dy / count
            k_xc = a * invstd * invstd * sum_dy_xc / count
            grad_x = torch.addcmul(per_channel(-k_mean), grad_out, per_channel(a))
            grad_x = grad_x.addcmul_(x_centred, per_channel(-k_xc)).to(x.dtype)
        return grad_x, grad_weight, grad_bias, None, None, None, None, None
