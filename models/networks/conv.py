"""Convolutions that take torch's own im2col + GEMM kernels in training on tiny feature maps.

The U-Net's inner levels work on feature maps of 1x1 to 8x8 pixels with 256-1024 channels.
There a convolution is a small matrix product with a large weight, and oneDNN spends its time
re-laying out that weight at every call, forward and backward; torch's native kernels use the
weight as it is. From 16 px up oneDNN is as fast or faster, so every other layer keeps the
default path. (The measurements behind the thresholds: benchmarks/README.md, "Convolutions
on tiny feature maps".)

In training these layers run through an autograd Function that calls the native operators
directly (``aten._slow_conv2d_forward``/``_slow_conv2d_backward``; the transposed forward is
one matrix product and one ``fold``, the weight gradient one ``unfold`` and one matrix
product): the choice is made per call, so it touches no process-wide switch and concurrent
threads (serve.py handles requests on threads) cannot see each other's choice. These are the
kernels torch itself dispatches to with oneDNN disabled, or the same sums in another order, so
outputs and gradients equal the default path's to float32 rounding (tested). Inference (no gradients)
keeps oneDNN. The Function applies to fp32 weights on the CPU, NCHW, no dilation, one group,
gradients wanted, not under torch.compile. It has no double backward; the generator, the only
network built from these layers, never needs one (a gradient penalty differentiates through D).

Under CPU autocast (``--amp bf16``) these layers leave autocast and run in fp32: in bf16 each
step would cast their large weights to bf16 and their gradients back, and oneDNN's bf16
kernels re-lay out the weight as its fp32 ones do. Their inputs are cast up to fp32 and their
outputs stay fp32; the next convolution casts down again, as autocast does anyway.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from engine.machine import cpu_features
from models.networks.layout import onednn_input

_aten = torch.ops.aten

# Transposed convolutions whose input side is at most this take the native kernels.
TRANSPOSED_MAX_IN_SIDE = 8


def default_down_max_out_side() -> int:
    """The largest output side at which a down convolution takes the native kernels on this
    CPU: 8 with AMX, else 1 (only the innermost, 1x1 output). Without AMX oneDNN's kernels
    win from a 2x2 output up; with AMX its weight re-layout costs more than the native
    kernels' whole work up to 8x8 outputs."""
    return 8 if cpu_features()["amx_tile"] else 1


def _weight_grad(x: Tensor, grad_out: Tensor, kernel: list[int], stride: list[int], padding: list[int]) -> Tensor:
    """The weight gradient of the down convolution of ``x`` whose output gradient is ``grad_out``:
    grad_out (C_out x B*L) times the columns of x (B*L x C_in*k*k) in one matrix product.
    ``_slow_conv2d_backward`` gets the same values by zero-filling a weight-sized tensor and
    accumulating into it: on these layers the weight is the largest tensor in sight (32 MB for
    1024x512x4x4), so writing it once instead of three times is most of the cost."""
    batch, c_out = grad_out.shape[:2]
    cols = torch.nn.functional.unfold(x, kernel, padding=padding, stride=stride)   # B x C_in*k*k x L
    if batch == 1:
        rows, columns = grad_out.reshape(c_out, -1), cols[0].t()
    else:
        rows = grad_out.transpose(0, 1).reshape(c_out, -1)
        columns = cols.transpose(1, 2).reshape(-1, cols.shape[1])
    return torch.mm(rows, columns).view(c_out, x.shape[1], *kernel)


def _transposed_forward(x: Tensor, weight: Tensor, bias: Tensor | None, kernel: list[int], stride: list[int],
                        padding: list[int], output_padding: list[int]) -> Tensor:
    """The transposed convolution of ``x`` as one matrix product and a col2im (``fold``): the
    columns (B*L x C_out*k*k) are x's pixels (B*L x C_in) times the weight as it is stored
    (C_in x C_out*k*k). ``slow_conv_transpose2d`` multiplies by the weight transposed instead,
    which reads a weight larger than the cache column by column: 3.3 against 1.0 ms for
    1024 -> 512 channels on a 2x2 input, 5.3 against 3.7 ms on 8x8 (AMX Xeon, fp32)."""
    batch, c_in, height, width = x.shape
    columns = torch.mm(x.reshape(batch, c_in, -1).transpose(1, 2).reshape(-1, c_in), weight.reshape(c_in, -1))
    columns = columns.view(batch, height * width, -1).transpose(1, 2)
    out_size = [(size - 1) * s - 2 * p + k + op
                for size, s, p, k, op in zip((height, width), stride, padding, kernel, output_padding)]
    out = torch.nn.functional.fold(columns, out_size, kernel, padding=padding, stride=stride)
    return out if bias is None else out.add_(bias.view(1, -1, 1, 1))


class _NativeKernelConv(torch.autograd.Function):
    """A 2-d convolution (dilation 1, one group) through torch's native CPU kernels."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor, bias: Tensor | None, stride: list[int],
                padding: list[int], transposed: bool, output_padding: list[int]) -> Tensor:
        ctx.save_for_backward(x, weight)
        ctx.setup = (stride, padding, transposed)
        ctx.has_bias = bias is not None
        kernel = list(weight.shape[-2:])
        if transposed:
            return _transposed_forward(x, weight, bias, kernel, stride, padding, output_padding)
        return _aten._slow_conv2d_forward(x, weight, kernel, bias, stride, padding)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        stride, padding, transposed = ctx.setup
        kernel = list(weight.shape[-2:])
        grad_out = grad_out.contiguous()
        want_x, want_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        want_b = ctx.has_bias and ctx.needs_input_grad[2]
        # A transposed convolution is the adjoint of the down convolution with the same weight,
        # stride and padding: its input gradient is that convolution of grad_out, and its weight
        # gradient is that convolution's weight gradient with the roles of input and output swapped.
        if transposed:
            grad_x = _aten._slow_conv2d_forward(grad_out, weight, kernel, None, stride, padding) if want_x else None
            grad_w = _weight_grad(grad_out, x, kernel, stride, padding) if want_w else None
        else:
            grad_x = _aten._slow_conv2d_backward(grad_out, x, weight, kernel, stride, padding,
                                                 [True, False, False])[0] if want_x else None
            grad_w = _weight_grad(x, grad_out, kernel, stride, padding) if want_w else None
        grad_b = grad_out.sum(dim=(0, 2, 3)) if want_b else None
        return grad_x, grad_w, grad_b, None, None, None, None


def _native_kernels_apply(layer: nn.Conv2d | nn.ConvTranspose2d, x: Tensor) -> bool:
    """fp32 NCHW weights, training on the CPU: fp32 inputs, or any floating input under CPU
    autocast (the layer is then run in fp32, see _native_conv), in NCHW or channels_last (made
    NCHW, a small copy at these sizes); a plain zero-padded, undilated, single-group layer."""
    weight = layer.weight
    autocast = torch.is_autocast_enabled("cpu")
    return (layer.native_backward and layer.padding_mode == "zeros" and not isinstance(layer.padding, str)
            and layer.groups == 1 and tuple(layer.dilation) == (1, 1)
            and x.device.type == "cpu" and weight.dtype == torch.float32
            and (x.dtype == torch.float32 or (autocast and x.is_floating_point()))
            and torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad)
            and x.dim() == 4 and (x.is_contiguous() or x.is_contiguous(memory_format=torch.channels_last))
            and weight.is_contiguous()
            and not torch.compiler.is_compiling())


def _native_conv(x: Tensor, weight: Tensor, bias: Tensor | None, *setup: Any) -> Tensor:
    x = x.contiguous()
    if torch.is_autocast_enabled("cpu"):
        # Outside autocast, in fp32: no bf16 copy of the weight, no cast of its gradient back.
        with torch.autocast("cpu", enabled=False):
            return _NativeKernelConv.apply(x.float(), weight, bias, *setup)
    return _NativeKernelConv.apply(x, weight, bias, *setup)


class Conv2d(nn.Conv2d):
    """nn.Conv2d (same parameters, state_dict and forward) with the native kernels in training
    where its output side is at most ``native_max_out_side``, fixed at construction (None: the
    rule for this CPU, ``default_down_max_out_side()``; 0: never, as in the discriminators,
    whose gradient penalty needs a second derivative). Elsewhere oneDNN, with its input in the
    layout of models/networks/layout.py."""

    native_backward = True   # False on an instance: always the default path (for measuring both)

    def __init__(self, *args: Any, native_max_out_side: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.native_max_out_side = (default_down_max_out_side() if native_max_out_side is None
                                    else native_max_out_side)

    def forward(self, x: Tensor) -> Tensor:
        if self._takes_native_kernels(x):
            return _native_conv(x, self.weight, self.bias, list(self.stride), list(self.padding), False, [0, 0])
        return super().forward(onednn_input(x))

    def _takes_native_kernels(self, x: Tensor) -> bool:
        if not self.native_max_out_side or not _native_kernels_apply(self, x):
            return False
        out_sides = ((size + 2 * p - (k - 1) - 1) // s + 1
                     for size, p, k, s in zip(x.shape[-2:], self.padding, self.kernel_size, self.stride))
        return max(out_sides) <= self.native_max_out_side


class ConvTranspose2d(nn.ConvTranspose2d):
    """nn.ConvTranspose2d (same parameters, state_dict and forward) with the native kernels in
    training where its input side is at most ``native_max_in_side`` (None:
    ``TRANSPOSED_MAX_IN_SIDE``; 0: never). Elsewhere oneDNN, input laid out as Conv2d's."""

    native_backward = True

    def __init__(self, *args: Any, native_max_in_side: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.native_max_in_side = TRANSPOSED_MAX_IN_SIDE if native_max_in_side is None else native_max_in_side

    def forward(self, x: Tensor, output_size: list[int] | None = None) -> Tensor:
        if (output_size is not None or max(x.shape[-2:]) > self.native_max_in_side
                or not _native_kernels_apply(self, x)):
            return super().forward(onednn_input(x), output_size)
        return _native_conv(x, self.weight, self.bias, list(self.stride), list(self.padding), True,
                            list(self.output_padding))


def onednn_conv2d(*args: Any, **kwargs: Any) -> Conv2d:
    """A Conv2d that always takes oneDNN (never the native kernels), its input in the layout
    of models/networks/layout.py: for layers whose shapes the native rule was not measured on
    (the ResNet generator, the resize upsamplers) or that need a second derivative (the
    discriminators, under a gradient penalty)."""
    return Conv2d(*args, native_max_out_side=0, **kwargs)


def onednn_conv_transpose2d(*args: Any, **kwargs: Any) -> ConvTranspose2d:
    """The transposed counterpart of ``onednn_conv2d``."""
    return ConvTranspose2d(*args, native_max_in_side=0, **kwargs)


def use_native_backward(module: nn.Module, on: bool) -> int:
    """Switch the native kernels on or off in every layer of ``module``; returns how many."""
    layers = [m for m in module.modules() if isinstance(m, (Conv2d, ConvTranspose2d))]
    for layer in layers:
        layer.native_backward = on
    return len(layers)


def set_down_max_out_side(module: nn.Module, side: int) -> int:
    """Give every down convolution of ``module`` the rule ``side`` (benchmarks compare rules on
    one network); returns how many."""
    layers = [m for m in module.modules() if isinstance(m, Conv2d)]
    for layer in layers:
        layer.native_max_out_side = side
    return len(layers)


def set_transposed_max_in_side(module: nn.Module, side: int) -> int:
    """The transposed counterpart of ``set_down_max_out_side``; returns how many layers."""
    layers = [m for m in module.modules() if isinstance(m, ConvTranspose2d)]
    for layer in layers:
        layer.native_max_in_side = side
    return len(layers)
