"""benchmarks/common.py: step_flops counts the native tiny-map convolutions (models/networks/
conv.py) as torch counts the same layers on its default path; torch's own formula for
aten._slow_conv2d_forward fails on that operator's arguments."""
from __future__ import annotations

from benchmarks.bf16_layouts import build
from benchmarks.common import step_flops


def test_native_layers_count_the_flops_of_the_default_path():
    native = step_flops(build("small", "none", False, native_tiny=True))
    default = step_flops(build("small", "none", False, native_tiny=False))
    assert native == default > 5e9   # unet_128 at ngf/ndf 32: 5.4 GFLOP per training step
