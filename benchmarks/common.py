"""What the benchmarks share: the variants, building a model per variant, timers, memory and
the machine's measured peak.

Variants are measured interleaved (one step of each in turn), so a machine that is busy with
something else slows every variant alike and the ratios hold.
"""
from __future__ import annotations

import json

import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent

from models import create_model
from models.base_model import BaseModel
from models.batchnorm import BatchNorm2d
from options.parse import parse_options
from engine.distributed import Runtime, unwrap
from engine.amp_auto import choose_auto_amp
from engine.machine import describe


def native_batchnorm(model: BaseModel) -> None:
    """Swap our BatchNorm2d for torch's nn.BatchNorm2d (same state), to price our implementation."""
    for net in model.nets.values():
        for parent in unwrap(net).modules():
            for name, child in parent.named_children():
                if isinstance(child, BatchNorm2d):
                    native = nn.BatchNorm2d(child.num_features, eps=child.eps, momentum=child.momentum)
                    native.load_state_dict(child.state_dict())
                    setattr(parent, name, native.to(next(child.parameters()).device))
    # The optimizers hold the old parameters: rebuild them over the new ones.
    model.optimizers = {name: model.make_adam(unwrap(model.nets[name])) for name in model.optimizers}


def per_tensor_adam(model: BaseModel) -> None:
    """torch's default Adam on CPU (a loop over parameters), as the project had it before
    issue 8 made Adam fused: the plain path that speed-ups are measured against."""
    model.optimizers = {name: torch.optim.Adam(unwrap(model.nets[name]).parameters(), lr=model.opt.lr,
                                               betas=(model.opt.beta1, 0.999), foreach=False)
                        for name in model.optimizers}


def onednn_backward(model: BaseModel) -> None:
    """Every convolution's backward through oneDNN, as before issue 15 (models/networks/conv.py)."""
    from models.networks.conv import use_native_backward
    for net in model.nets.values():
        use_native_backward(unwrap(net), False)


@dataclass(frozen=True)
class Variant:
    options: tuple[str, ...] = ()                  # train.py speed options
    patch: Callable[[BaseModel], None] | None = None
    threads: int = 0                               # torch intra-op threads while it runs (0: default)
    devices: tuple[str, ...] = ("cpu", "cuda")
    help: str = ""
    # Start from fp32 (--amp none) so each variant is exactly its options; False: train.py's defaults.
    from_fp32: bool = True


# Written out literally: the benchmark's list of what there is to measure.
VARIANTS: dict[str, Variant] = {
    "plain_fp32": Variant(patch=per_tensor_adam, devices=("cpu",),
                          help="the path before issue 8: eager fp32, per-tensor Adam loop (the baseline)"),
    "eager_fp32": Variant(help="today's defaults: eager fp32, fused Adam, our BatchNorm, torch's default threads"),
    "defaults": Variant(from_fp32=False, help="train.py's defaults as they are"),
    "auto": Variant(("--amp", "auto"), help="--amp auto: bf16 where the hardware has it, else fp32"),
    "bf16": Variant(("--amp", "bf16"), help="bfloat16 autocast"),
    "fp16": Variant(("--amp", "fp16"), help="float16 autocast with GradScalers"),
    "channels_last": Variant(("--channels_last",), help="NHWC networks and inputs"),
    "bf16_channels_last": Variant(("--amp", "bf16", "--channels_last"), help="bf16 and NHWC"),
    "compile": Variant(("--compile",), help="torch.compile (reduce-overhead / CUDA graphs on CUDA)"),
    "bf16_compile": Variant(("--amp", "bf16", "--compile"), help="bf16 and torch.compile"),
    "native_bn": Variant(patch=native_batchnorm, help="torch's nn.BatchNorm2d instead of ours"),
    "bf16_native_bn": Variant(("--amp", "bf16"), patch=native_batchnorm, help="bf16, nn.BatchNorm2d"),
    "onednn_backward": Variant(patch=onednn_backward, help="fp32, oneDNN backward for the U-Net's tiny "
                                                           "feature maps too (before issue 15)"),
    "threads1": Variant(threads=1, devices=("cpu",), help="one intra-op thread (a core left for the loader)"),
    "tf32": Variant(devices=("cuda",), help="fp32 with TF32 tensor-core matmuls (set per variant)"),
}
# Speed-ups are given against the first of these that was measured.
BASELINES = ("plain_fp32", "eager_fp32")
# Variants that switch TF32 on; every other CUDA variant runs with it off so eager_fp32 is true fp32.
TF32_VARIANTS = {"tf32", "defaults", "auto", "bf16", "fp16", "compile", "bf16_compile", "bf16_channels_last"}


def build_model(train_args: Sequence[str], variant: Variant, runtime: Runtime, seed: int = 0) -> BaseModel:
    start = ["--amp", "none"] if variant.from_fp32 else []
    opt = parse_options([*start, *train_args, *variant.options], is_train=True)
    torch.manual_seed(seed)
    model = create_model(opt, runtime)
    # --amp auto as train.py settles it: measured (or cached, or pinned by PIX2PIX_AMP_AUTO).
    model.amp = choose_auto_amp(opt, model, model.amp, runtime.device)
    if variant.patch is not None:
        variant.patch(model)
    model.train()
    return model


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class PhaseTimer:
    """Wall time of named phases, synchronizing the device at each boundary."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.times: dict[str, float] = {}

    def __call__(self, name: str, fn: Callable[[], object]) -> object:
        synchronize(self.device)
        start = time.perf_counter()
        out = fn()
        synchronize(self.device)
        self.times[name] = self.times.get(name, 0.0) + time.perf_counter() - start
        return out


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


# -- memory -----------------------------------------------------------------------------------
def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    try:  # Linux: writing 5 resets the process's peak RSS (VmHWM)
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- the machine ------------------------------------------------------------------------------
def machine_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = platform.processor() or "cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores, {torch.backends.cpu.get_cpu_capability()}"


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def measured_peak_flops(device: torch.device, dtype: torch.dtype, seconds: float = 1.0) -> float:
    """FLOP/s of a large square matmul: the practical ceiling the step is compared against
    (nominal datasheet peaks are not reachable, and on a shared CPU not even knowable)."""
    n = 4096 if device.type == "cuda" else 1024
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(2):
        a @ b
    synchronize(device)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        count += 1
        if device.type == "cuda" and count % 10:
            continue
        synchronize(device)
    synchronize(device)
    return 2 * n**3 * count / (time.perf_counter() - start)


def step_flops(fn: Callable[[], object]) -> int:
    """FLOPs of one call, counted by torch.utils.flop_counter (convolutions and matmuls).

    torch's formula for ``aten._slow_conv2d_forward`` expects the arguments of
    ``aten.convolution`` and fails on its own; it and the other native operators that
    models/networks/conv.py calls are given theirs here (the weight gradient is an mm, which
    torch counts)."""
    from torch.utils.flop_counter import FlopCounterMode, conv_flop_count

    aten = torch.ops.aten

    def down(x_shape: Any, w_shape: Any, *_: Any, out_shape: Any = None, **__: Any) -> int:
        return conv_flop_count(x_shape, w_shape, out_shape, transposed=False)

    def transposed(x_shape: Any, w_shape: Any, *_: Any, out_shape: Any = None, **__: Any) -> int:
        return conv_flop_count(x_shape, w_shape, out_shape, transposed=True)

    def input_grad(grad_shape: Any, x_shape: Any, w_shape: Any, *args: Any, out_shape: Any = None, **__: Any) -> int:
        mask = args[-1]
        return conv_flop_count(grad_shape, w_shape, x_shape, transposed=True) if mask[0] else 0

    native = {aten._slow_conv2d_forward: down, aten.slow_conv_transpose2d: transposed,
              aten._slow_conv2d_backward: input_grad}
    with FlopCounterMode(display=False, custom_mapping=native) as counter:
        fn()
    return counter.get_total_flops()


@dataclass
class Samples:
    step: list[float] = field(default_factory=list)
    phases: dict[str, list[float]] = field(default_factory=dict)


def machine_record(device: torch.device) -> dict:
    """The CPU's model and features (AMX, AVX512-BF16, AVX-512, AVX2), torch's build, threads,
    the OpenMP waiting settings and the load average at this moment."""
    return describe(device)


def emit(records: Iterable[dict], out_path: str | None) -> None:
    """Print each record as one JSON line as soon as it exists, and append it to ``out_path``.
    Every line carries ``machine_record`` as taken when it is written (its load average too)."""
    out = open(out_path, "a") if out_path else None
    try:
        for record in records:
            device = torch.device("cuda" if record.get("device") == "cuda" else "cpu")
            text = json.dumps({**record, "machine_info": machine_record(device)})
            print(text, flush=True)
            if out:
                out.write(text + "\n")
                out.flush()
    finally:
        if out:
            out.close()


def split_argv(argv: Sequence[str] | None) -> tuple[list[str], list[str]]:
    """Benchmark flags before ``--``, training flags (passed on to the model) after it."""
    args = list(sys.argv[1:] if argv is None else argv)
    if "--" not in args:
        return args, []
    cut = args.index("--")
    return args[:cut], args[cut + 1:]
