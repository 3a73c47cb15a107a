"""Memory layout of activations under CPU bf16 autocast: channels_last (NHWC) around oneDNN.

oneDNN's bf16 convolutions compute in NHWC. Handed NCHW tensors, each one reorders its input
on the way in and its output on the way out, forward and backward; handed NHWC tensors, it
does neither, and the layers between (batch norm, activations, dropout) keep the layout they
are given. So under CPU bf16 autocast the convolutions that go through oneDNN take their input
channels_last (the first one converts, the rest find it so), while fp32 keeps NCHW, where
channels_last measured slower (benchmarks/README.md, "Channels-last under bf16").

The U-Net's skip connections need one more thing: the gradient of ``torch.cat`` is a channel
slice of the gradient of its output, and a channel slice of an NHWC tensor is contiguous in
neither layout, which sends batch norm's backward down its slow strided path.
``cat_channels`` hands each input a gradient in that input's own layout.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


def bf16_autocast_on_cpu() -> bool:
    return torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16


def onednn_input(x: Tensor) -> Tensor:
    """``x`` as a oneDNN convolution should receive it: channels_last under CPU bf16 autocast
    (a no-op when it already is), unchanged otherwise."""
    if x.dim() == 4 and x.device.type == "cpu" and bf16_autocast_on_cpu():
        return x.contiguous(memory_format=torch.channels_last)
    return x


def is_channels_last(x: Tensor) -> bool:
    """Stored NHWC (and not also plain contiguous, as a tensor with one channel or 1x1 is)."""
    return x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)


def _layout(x: Tensor) -> torch.memory_format:
    return torch.channels_last if is_channels_last(x) else torch.contiguous_format


class _CatKeepingLayouts(torch.autograd.Function):
    """torch.cat on dim 1 whose backward gives each input its gradient in its own layout."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, y: Tensor) -> Tensor:
        ctx.split = x.shape[1]
        ctx.layouts = (_layout(x), _layout(y))
        return torch.cat([x, y], dim=1)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, Tensor]:
        # Plain tensor operations: a second derivative through this is still available.
        gx, gy = grad[:, :ctx.split], grad[:, ctx.split:]
        return gx.contiguous(memory_format=ctx.layouts[0]), gy.contiguous(memory_format=ctx.layouts[1])


def cat_channels(x: Tensor, y: Tensor) -> Tensor:
    """``torch.cat([x, y], dim=1)``; where either input is channels_last, with gradients that
    keep each input's layout (NCHW inputs take torch.cat itself: no copy added)."""
    if torch.is_grad_enabled() and (is_channels_last(x) or is_channels_last(y)):
        return _CatKeepingLayouts.apply(x, y)
    return torch.cat([x, y], dim=1)
