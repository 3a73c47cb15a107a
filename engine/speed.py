"""Speed settings: backend switches, mixed precision, torch.compile with a fallback, fused Adam.

Each piece takes the few values it needs (a device, a mode name), so the model, the drivers
and the benchmarks share one implementation, and each can be measured alone.
"""
from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass
from typing import Any, ContextManager, Iterable

import torch
from torch import nn

from util.errors import OptionError
from util.registry import Registry

log = logging.getLogger(__name__)


# -- mixed precision ------------------------------------------------------------------------
@dataclass(frozen=True)
class AmpMode:
    dtype: torch.dtype | None   # None: no autocast (plain fp32)
    needs_scaler: bool          # fp16 gradients underflow without loss scaling; bf16 has fp32's range


# auto_candidate: a mode --amp auto may settle on (engine/amp_auto.py times each against the others).
AMP_MODES: Registry[AmpMode] = Registry("--amp")
AMP_MODES.add("auto", AmpMode(None, False),
              help="training: bf16 where it is measured faster than fp32 for this run's networks (timed "
                   "once per machine and configuration, engine/amp_auto.py), else none")
AMP_MODES.add("none", AmpMode(None, False), auto_candidate=True, help="plain fp32")
AMP_MODES.add("bf16", AmpMode(torch.bfloat16, False), auto_candidate=True,
              help="bfloat16 autocast (CPUs with AVX512-BF16/AMX, Ampere+ GPUs); no loss scaling needed")
AMP_MODES.add("fp16", AmpMode(torch.float16, True),
              help="float16 autocast with a GradScaler per optimizer (GPUs; works but is slow on most CPUs)")


class SpeedError(OptionError):
    """A speed option that cannot work on this device, as one line."""


def native_bf16(device: torch.device) -> bool:
    """Whether bf16 convolutions run in hardware here (elsewhere they are emulated, slower than fp32)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type == "cpu":
        return bool(torch.backends.mkldnn.is_available() and onednn_bf16_supported())
    return False


def onednn_bf16_supported() -> bool:
    """oneDNN's own answer to "does this CPU do bf16". torch exposes it only as the private
    op ``torch.ops.mkldnn._is_mkldnn_bf16_supported``, read here and nowhere else;
    tests/test_private_apis.py fails loudly if a torch release renames or removes it."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def resolve_amp(amp: str, device: torch.device) -> str:
    """``auto`` -> ``bf16`` where the device computes it natively, else ``none``; other names
    unchanged (validated). For training this is only the candidate: train.py then times bf16
    against fp32 (``engine.amp_auto.choose_auto_amp``) and may settle on ``none``."""
    AMP_MODES.get(amp)
    if amp != "auto":
        return amp
    return "bf16" if native_bf16(device) else "none"


def autocast(device: torch.device, amp: str) -> ContextManager[Any]:
    """The autocast context for ``amp`` on ``device`` (a no-op for ``none``)."""
    mode = AMP_MODES.get(resolve_amp(amp, device))
    if mode.dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=mode.dtype)


def make_grad_scaler(device: torch.device, amp: str) -> torch.amp.GradScaler | None:
    """A GradScaler where the mode needs one, else None (callers then step plainly)."""
    if not AMP_MODES.get(resolve_amp(amp, device)).needs_scaler:
        return None
    return torch.amp.GradScaler(device.type)


def check_amp_supported(device: torch.device, amp: str) -> None:
    mode = AMP_MODES.get(resolve_amp(amp, device))
    if mode.dtype is torch.bfloat16 and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise SpeedError(f"--amp bf16: {torch.cuda.get_device_name(device)} has no bfloat16 support; use --amp fp16")


# -- optimizers -----------------------------------------------------------------------------
def make_adam(params: Iterable[nn.Parameter], lr: float, betas: tuple[float, float],
              device: torch.device) -> torch.optim.Adam:
    """Adam with the fused kernel: one pass per parameter instead of a chain of elementwise
    ops. On CUDA that is one launch instead of many (and a GradScaler's inf check without a
    host sync); on CPU it replaces a per-tensor loop over unet_256's 54M parameters that is a
    large part of a step (benchmarks/README.md, "Fused Adam")."""
    return torch.optim.Adam(params, lr=lr, betas=betas, fused=device.type in ("cuda", "cpu") or None)


# -- torch.compile --------------------------------------------------------------------------
COMPILE_MODES = ("auto", "default", "reduce-overhead", "max-autotune")


def resolve_compile_mode(mode: str, device: torch.device) -> str:
    """``auto``: CUDA graphs (``reduce-overhead``) on CUDA, where a small-batch step is bound
    by kernel launches; inductor's default elsewhere."""
    if mode not in COMPILE_MODES:
        raise SpeedError(f"--compile_mode {mode!r} is not one of {', '.join(COMPILE_MODES)}")
    if mode != "auto":
        return mode
    return "reduce-overhead" if device.type == "cuda" else "default"


class CompileFallback(nn.Module):
    """Runs a torch.compile'd module, and the plain one if compiling fails.

    torch.compile is lazy: a missing C++ compiler, an unsupported op or a backend bug shows
    up at the first call, as a long traceback. Here that first failure becomes one warning
    naming the network, and every later call runs eager. The plain module stays reachable as
    ``.module`` (``engine.distributed.unwrap`` strips this wrapper for saving).
    """

    def __init__(self, module: nn.Module, name: str, mode: str) -> None:
        super().__init__()
        self.module = module
        self.name = name
        self.mode = mode
        self.compiled: Any = torch.compile(module, mode=mode)
        self.failed = False

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if self.failed:
            return self.module(*args, **kwargs)
        try:
            return self.compiled(*args, **kwargs)
        except Exception as err:  # noqa: BLE001 - any compiler failure means "run eager"
            # Only compile-time failures get here before anything ran; a real error in the
            # network raises again from the eager call below, with its own message.
            self.failed = True
            reason = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
            log.warning("--compile: could not compile %s (%s: %s); running it eager", self.name,
                        type(err).__name__, reason)
            return self.module(*args, **kwargs)


def compile_network(net: nn.Module, name: str, mode: str, device: torch.device) -> nn.Module:
    return CompileFallback(net, name, resolve_compile_mode(mode, device))


# -- memory format --------------------------------------------------------------------------
def to_channels_last(net: nn.Module) -> nn.Module:
    """NHWC weights; inputs are converted at the step. On CUDA with tensor cores this avoids
    layout transposes around each convolution; on CPU it depends on oneDNN (measure it)."""
    return net.to(memory_format=torch.channels_last)


# -- backend switches -----------------------------------------------------------------------
@dataclass(frozen=True)
class BackendSettings:
    cudnn_benchmark: bool = True   # fixed input sizes: let cuDNN pick the fastest algorithm once
    tf32: bool = True              # TF32 matmuls/convolutions on Ampere+ (10-bit mantissa inputs)
    torch_threads: int = 0         # intra-op threads; 0 keeps torch's default (one per core)


def apply_backend_settings(settings: BackendSettings, device: torch.device) -> dict[str, Any]:
    """Set the process-wide switches once, before building the model; returns what is in force."""
    if settings.torch_threads > 0:
        torch.set_num_threads(settings.torch_threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = settings.cudnn_benchmark
        precision = "tf32" if settings.tf32 else "ieee"
        torch.backends.cuda.matmul.fp32_precision = precision
        torch.backends.cudnn.conv.fp32_precision = precision
    return {"torch_threads": torch.get_num_threads(), "cudnn_benchmark": torch.backends.cudnn.benchmark,
            "tf32": settings.tf32 and device.type == "cuda", "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "cpu_count": os.cpu_count()}


def backend_settings_from(opt: Any) -> BackendSettings:
    return BackendSettings(cudnn_benchmark=not getattr(opt, "no_cudnn_benchmark", False),
                           tf32=not getattr(opt, "no_tf32", False),
                           torch_threads=getattr(opt, "torch_threads", 0))
