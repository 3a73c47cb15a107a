"""Convolutions that avoid oneDNN in training where oneDNN is slow: tiny feature maps.

The U-Net's inner levels work on feature maps of 1x1 to 8x8 pixels with 256-1024 channels.
There a convolution is a small matrix product with a large weight, and oneDNN spends its time
re-laying out that weight at every call. Measured on the CPU (AMD EPYC Zen 4, 2 threads, fp32,
batch 1; benchmarks/conv_backward.py), the transposed convolutions' backward at input sides 1-8
took 2-5x longer with oneDNN than with torch's own im2col + GEMM kernels (the paper U-Net's
1024->512 layers: 40-52 ms against 17-26 ms each), and so did the innermost down convolution
(output 1x1: 15 ms against 2 ms). At 16 px and above oneDNN is as fast or faster, so
everything else keeps the default.

In training these layers run through an autograd Function with oneDNN switched off, in the
backward and, since the AMX measurements, in the forward too (oneDNN's forward re-lays out the
same weight: 10-15 ms per 1024x512x4x4 layer in a profile on an AMX Xeon). With the whole rule
the probe step (G and D, forward and backward, fp32) on that Xeon, 2 cores, took 0.081 s
against 0.091 at 128 px and 0.632 against 0.743 at 256 px (benchmarks/bf16_layouts.py, fp32
against fp32_onednn_tiny; benchmarks/results/issue15_amx_bf16_layouts_quiet.jsonl). Inference
(no gradients) keeps oneDNN. Both compute the same convolution, so outputs and gradients agree
to float32 rounding (tested against the default path). The Function applies to
fp32 weights on the CPU, NCHW, gradients wanted, not under torch.compile. It has no double
backward; the generator, the only network built from these layers, never needs one (a gradient
penalty differentiates through D).

Under CPU autocast (``--amp bf16``) these layers leave autocast and run in fp32. In bf16 they
cost more: each step casts their large weights to bf16 and their gradients back (a 1024x512x4x4
weight is 32 MB, 4-8 ms per cast on 2 cores), and oneDNN's bf16 kernels re-lay out the weight as
its fp32 ones do. On the AMX Xeon the 256 px probe step took 0.347 s this way against 0.483 s
with these layers in bf16 through oneDNN (benchmarks/bf16_layouts.py, bf16 against
bf16_onednn_tiny). Their inputs are cast up to fp32 and their outputs stay fp32; the next
convolution casts down again, as autocast does anyway.
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from engine.machine import cpu_features

# Where the native kernels are taken: transposed convolutions whose input side is at most
# this, and down convolutions whose output side is at most down_max_out_side().
TRANSPOSED_MAX_SIDE = 8


# A fixed value in place of the CPU's (tests, and benchmarks/bf16_layouts.py's *_down1 variants).
DOWN_MAX_OUT_SIDE: int | None = None


def down_max_out_side() -> int:
    """The largest output side at which a down convolution takes the native kernels: 8 on a
    CPU with AMX, else 1 (only the innermost, 1x1 output). The CPUs disagree here. On the Zen 4
    (fp32 backward, benchmarks/conv_backward.py) the native backward of the 4x4 -> 2x2 layer was
    2.3-2.9x slower than oneDNN's; on an AMX Xeon the native backward took 0.65-0.91x oneDNN's time at
    outputs 2-8 (benchmarks/results/issue15_amx_conv_backward_quiet.jsonl), and whole probe
    steps were faster with every output up to 8x8 native (benchmarks/bf16_layouts.py,
    fp32 and bf16 against fp32_down1 and bf16_down1; 16x16 gave mixed results)."""
    if DOWN_MAX_OUT_SIDE is not None:
        return DOWN_MAX_OUT_SIDE
    return 8 if cpu_features()["amx_tile"] else 1


class _NativeBackwardConv(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor, bias: Tensor | None, stride: list[int], padding: list[int],
                dilation: list[int], transposed: bool, output_padding: list[int], groups: int) -> Tensor:
        ctx.save_for_backward(x, weight)
        ctx.setup = (stride, padding, dilation, transposed, output_padding, groups)
        ctx.has_bias = bias is not None
        with _onednn_off():
            return torch.ops.aten.convolution(x, weight, bias, stride, padding, dilation, transposed,
                                              output_padding, groups)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        stride, padding, dilation, transposed, output_padding, groups = ctx.setup
        out_channels = weight.shape[1] * groups if transposed else weight.shape[0]
        mask = [ctx.needs_input_grad[0], ctx.needs_input_grad[1], ctx.has_bias and ctx.needs_input_grad[2]]
        with _onednn_off():
            grad_x, grad_w, grad_b = torch.ops.aten.convolution_backward(
                grad_out.contiguous(), x, weight, [out_channels] if ctx.has_bias else None, stride, padding,
                dilation, transposed, output_padding, groups, mask)
        return grad_x, grad_w, grad_b, None, None, None, None, None, None


@contextlib.contextmanager
def _onednn_off() -> Iterator[None]:
    # The switch itself, not torch.backends.mkldnn.flags(): that also resets oneDNN's TF32
    # setting, which warns on every call in a build without Intel GPU support.
    was_enabled = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = was_enabled


def _fp32_weights_training(x: Tensor, weight: Tensor) -> bool:
    """fp32 weights, training on the CPU in NCHW: fp32 inputs, or any floating input under
    CPU autocast (the layer is then run in fp32, see _native_backward_conv)."""
    autocast = torch.is_autocast_enabled("cpu")
    return (x.device.type == "cpu" and weight.dtype == torch.float32
            and (x.dtype == torch.float32 or (autocast and x.is_floating_point()))
            and torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad)
            and x.dim() == 4 and x.is_contiguous() and weight.is_contiguous()
            and not torch.compiler.is_compiling())


def _native_backward_conv(x: Tensor, weight: Tensor, bias: Tensor | None, *setup: Any) -> Tensor:
    if torch.is_autocast_enabled("cpu"):
        # Outside autocast, in fp32: no bf16 copy of the weight, no cast of its gradient back.
        with torch.autocast("cpu", enabled=False):
            return _NativeBackwardConv.apply(x.float(), weight, bias, *setup)
    return _NativeBackwardConv.apply(x, weight, bias, *setup)


class Conv2d(nn.Conv2d):
    """nn.Conv2d (same parameters, state_dict and forward) with the native kernels in training
    where its output side is at most ``down_max_out_side()``."""

    native_backward = True   # False on an instance: always the default path (for measuring both)

    def forward(self, x: Tensor) -> Tensor:
        if not self.native_backward or self.padding_mode != "zeros" or isinstance(self.padding, str) or not _fp32_weights_training(x, self.weight):
            return super().forward(x)
        out_h, out_w = (
            (size + 2 * p - d * (k - 1) - 1) // s + 1
            for size, p, d, k, s in zip(x.shape[-2:], self.padding, self.dilation, self.kernel_size, self.stride))
        if max(out_h, out_w) > down_max_out_side():
            return super().forward(x)
        return _native_backward_conv(x, self.weight, self.bias, list(self.stride), list(self.padding),
                                     list(self.dilation), False, [0, 0], self.groups)


class ConvTranspose2d(nn.ConvTranspose2d):
    """nn.ConvTranspose2d (same parameters, state_dict and forward) with the native backward
    where its input side is at most ``TRANSPOSED_MAX_SIDE``."""

    native_backward = True

    def forward(self, x: Tensor, output_size: list[int] | None = None) -> Tensor:
        if (not self.native_backward or output_size is not None or max(x.shape[-2:]) > TRANSPOSED_MAX_SIDE
                or not _fp32_weights_training(x, self.weight)):
            return super().forward(x, output_size)
        return _native_backward_conv(x, self.weight, self.bias, list(self.stride), list(self.padding),
                                     list(self.dilation), True, list(self.output_padding), self.groups)


def use_native_backward(module: nn.Module, on: bool) -> int:
    """Switch the native backward on or off in every layer of ``module``; returns how many."""
    layers = [m for m in module.modules() if isinstance(m, (Conv2d, ConvTranspose2d))]
    for layer in layers:
        layer.native_backward = on
    return len(layers)
