"""bf16 and channels_last (NHWC) against fp32, and each against a matmul ceiling measured in
the same rounds (issue 15, item "AMX").

oneDNN's fast bf16 convolutions (AMX tiles on Intel Sapphire Rapids and later, AVX512-BF16
dot products elsewhere) prefer NHWC activations with bf16 weights. Whether that wins depends
on the CPU, so this measures it: the `--amp auto` probe step (the model's own training step,
Pix2PixModel.train_step, optimizers included) in four variants, fp32 / bf16 x NCHW / NHWC, interleaved with a
1024^3 matmul in fp32 and bf16, round after round. Each variant's GFLOP/s is set against the
ceiling of its dtype measured in the same round, so a load that comes and goes scales both.

    python benchmarks/bf16_layouts.py --config paper --rounds 5
"""
from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from typing import Callable, Iterator

import torch

from benchmarks.common import Variant, build_model, emit, step_flops
from engine.amp_auto import probe_step
from engine.distributed import Runtime, unwrap
from models.networks import conv, unet
from models.base_model import BaseModel
from models.networks.conv import set_down_max_out_side, use_native_backward
from util.interleave import rotated


CONFIGS = {"paper": ("unet_256", 64, 256), "small": ("unet_128", 32, 128), "resnet": ("resnet_9blocks", 64, 256)}
# name: (amp, NHWC, native kernels for the tiny layers (models/networks/conv.py), the largest
# down-convolution output side they cover (None: the CPU's rule), the bf16 channels_last rule
# of models/networks/layout.py). The *_onednn_tiny variants switch the native rule off, the
# *_down1 ones keep it to the innermost down convolution (the rule without AMX), bf16_nchw
# switches the layout rule off, to measure what each gives in each dtype.
VARIANTS = {"fp32": ("none", False, True, None, True), "bf16": ("bf16", False, True, None, True),
            "fp32_nhwc": ("none", True, True, None, True), "bf16_nhwc": ("bf16", True, True, None, True),
            "fp32_onednn_tiny": ("none", False, False, None, True),
            "bf16_onednn_tiny": ("bf16", False, False, None, True),
            "fp32_down1": ("none", False, True, 1, True), "bf16_down1": ("bf16", False, True, 1, True),
            "bf16_nchw": ("bf16", False, True, None, False)}


def matmul_seconds(dtype: torch.dtype, n: int = 1024, reps: int = 8) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    start = time.perf_counter()
    for _ in range(reps):
        a @ b
    return (time.perf_counter() - start) / reps


@contextlib.contextmanager
def layout_rule_off() -> Iterator[None]:
    """models/networks/layout.py's rule switched off: NCHW activations under bf16 too."""
    saved = conv.onednn_input, unet.cat_channels
    conv.onednn_input, unet.cat_channels = (lambda x: x), (lambda x, y: torch.cat([x, y], dim=1))
    try:
        yield
    finally:
        conv.onednn_input, unet.cat_channels = saved


def config_model(config: str, nhwc: bool = False) -> tuple[BaseModel, dict[str, torch.Tensor]]:
    """The paper's model (batch norm, dropout, PatchGAN) of ``config`` on the CPU, seeded, and a
    random batch of its size: what a probe step runs on."""
    net_g_name, width, size = CONFIGS[config]
    args = ["--dataroot", "unused", "--gpu_ids", "-1", "--display_id", "0", "--netG", net_g_name,
            "--ngf", str(width), "--ndf", str(width), "--crop_size", str(size), "--load_size", str(size),
            *(["--channels_last"] if nhwc else [])]
    model = build_model(args, Variant(), Runtime(device=torch.device("cpu")), seed=0)
    return model, {"A": torch.rand(1, 3, size, size) * 2 - 1, "B": torch.rand(1, 3, size, size) * 2 - 1}


def build(config: str, amp: str, nhwc: bool, native_tiny: bool = True,
          down_max: int | None = None, layout: bool = True) -> Callable[[], None]:
    """The probe step of the paper's model in ``amp``."""
    model, batch = config_model(config, nhwc)
    use_native_backward(unwrap(model.net_G), native_tiny)
    if down_max is not None:
        set_down_max_out_side(unwrap(model.net_G), down_max)
    step = probe_step(model, batch, amp, torch.device("cpu"))
    if layout:
        return step

    def step_in_nchw() -> None:
        with layout_rule_off():
            step()
    return step_in_nchw


def run(args: argparse.Namespace) -> list[dict]:
    steps = {}
    for name, (amp, nhwc, native_tiny, down_max, layout) in VARIANTS.items():
        if name not in args.variants.split(","):
            continue
        steps[name] = build(args.config, amp, nhwc, native_tiny, down_max, layout)
        steps[name]()   # warm-up: oneDNN creates its primitives for each shape and dtype
    flops = step_flops(steps["fp32"])
    times: dict[str, list[float]] = {n: [] for n in steps}
    ceiling: dict[str, list[float]] = {"fp32": [], "bf16": []}
    fraction: dict[str, list[float]] = {n: [] for n in steps}
    names = list(steps)
    for r in range(args.rounds):
        peak = {"fp32": 2 * 1024**3 / matmul_seconds(torch.float32), "bf16": 2 * 1024**3 / matmul_seconds(torch.bfloat16)}
        for k, v in peak.items():
            ceiling[k].append(v)
        for name in rotated(names, r):
            start = time.perf_counter()
            steps[name]()
            seconds = time.perf_counter() - start
            times[name].append(seconds)
            fraction[name].append(flops / seconds / peak["bf16" if name.startswith("bf16") else "fp32"])
    base = statistics.median(times["fp32"])
    return [{"bench": "bf16_layouts", "device": "cpu", "config": args.config, "variant": name,
             "s_per_step": round(statistics.median(t), 4), "vs_fp32": round(base / statistics.median(t), 3),
             "gflop_per_step": round(flops / 1e9, 2), "achieved_gflop_s": round(flops / statistics.median(t) / 1e9, 1),
             "matmul_ceiling_gflop_s": {k: round(statistics.median(v) / 1e9, 1) for k, v in ceiling.items()},
             "fraction_of_ceiling": round(statistics.median(fraction[name]), 3), "rounds": args.rounds,
             "per_round_s": [round(x, 4) for x in t]} for name, t in times.items()]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="paper", choices=list(CONFIGS))
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, fp32 first: {', '.join(VARIANTS)}")
    p.add_argument("--out", help="append the JSON lines to this file")
    args = p.parse_args(argv)
    chosen = args.variants.split(",")
    unknown = [v for v in chosen if v not in VARIANTS]
    if unknown or "fp32" not in chosen:
        p.error(f"--variants: {', '.join(unknown) or 'fp32 is missing'} (fp32, the baseline, and any of "
                f"{', '.join(VARIANTS)})")
    emit(run(args), args.out)


if __name__ == "__main__":
    main()
