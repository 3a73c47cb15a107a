"""What a speed figure or a measured choice depends on: the CPU's model and instruction-set
features, torch's build, the thread count and the OpenMP waiting settings."""
from __future__ import annotations

import os
import platform
import re
from functools import lru_cache
from pathlib import Path

import torch

from util import omp_env

# /proc/cpuinfo flags that decide which kernels oneDNN can use (amx_*: Intel AMX tiles, the
# bf16 matmul path that is ~4x the AVX-512 one; avx512_bf16: bf16 dot products on AVX-512).
FEATURES = ("amx_bf16", "amx_tile", "avx512_bf16", "avx512f", "avx2")
OMP_SETTINGS = (*omp_env.USER_KEYS, "OMP_NUM_THREADS", omp_env.POLICY_ENV)


@lru_cache(maxsize=1)
def cpu_model_and_flags() -> tuple[str, frozenset[str]]:
    model, flags = platform.processor() or "unknown cpu", frozenset()
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return model, flags
    found = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    listed = re.search(r"^flags\s*:\s*(.+)$", text, re.M)
    return (found.group(1).strip() if found else model), frozenset(listed.group(1).split() if listed else ())


# What each oneDNN ISA cap (ONEDNN_MAX_CPU_ISA, or DNNL_MAX_CPU_ISA) still lets its kernels use.
# Not a ladder: AVX10_2_512 keeps AVX-512 bf16 but not the AMX tiles. DEFAULT, ALL and names
# oneDNN does not know lift no cap (oneDNN ignores them too).
_AVX512_BF16 = frozenset({"avx2", "avx512f", "avx512_bf16"})
_WITH_AMX = _AVX512_BF16 | {"amx_bf16", "amx_tile"}
ONEDNN_CAPS: dict[str, frozenset[str]] = {
    "SSE41": frozenset(), "AVX": frozenset(),
    "AVX2": frozenset({"avx2"}), "AVX2_VNNI": frozenset({"avx2"}), "AVX2_VNNI_2": frozenset({"avx2"}),
    "AVX512_CORE": frozenset({"avx2", "avx512f"}), "AVX512_CORE_VNNI": frozenset({"avx2", "avx512f"}),
    "AVX512_CORE_BF16": _AVX512_BF16, "AVX512_CORE_FP16": _AVX512_BF16, "AVX10_1_512": _AVX512_BF16,
    "AVX10_2_512": _AVX512_BF16,
    "AVX512_CORE_AMX": _WITH_AMX, "AVX10_1_512_AMX": _WITH_AMX, "AVX512_CORE_AMX_FP16": _WITH_AMX,
    "AVX10_1_512_AMX_FP16": _WITH_AMX, "AVX10_2_512_AMX_2": _WITH_AMX,
}
# ATen's own vector kernels (torch.backends.cpu.get_cpu_capability(), which ATEN_CPU_CAPABILITY
# lowers) decide the two plain vector widths; bf16 and AMX are oneDNN's alone.
ATEN_CAPS: dict[str, frozenset[str]] = {"DEFAULT": frozenset(), "AVX2": frozenset({"avx2"})}
ATEN_WIDTHS = frozenset({"avx2", "avx512f"})   # the features ATen's capability governs
ONEDNN_CAP_SETTINGS = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")   # in oneDNN's order: the first set wins
ISA_SETTINGS = (*ONEDNN_CAP_SETTINGS, "ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS")


def onednn_cap() -> frozenset[str] | None:
    """The features oneDNN's ISA cap leaves, or None where nothing caps it."""
    for name in ONEDNN_CAP_SETTINGS:
        if name in os.environ:
            return ONEDNN_CAPS.get(os.environ[name].strip().upper())
    return None


def cpu_features() -> dict[str, bool]:
    """The CPU's features as this process's kernels may use them: the /proc/cpuinfo flags less
    what an ISA cap (oneDNN's, ATen's) takes away, so a run restricted to AVX2 on an AMX
    machine follows the AVX2 rules and keys its measured choices apart."""
    flags = set(cpu_model_and_flags()[1])
    if (cap := onednn_cap()) is not None:
        flags &= cap
    if (aten := ATEN_CAPS.get(torch.backends.cpu.get_cpu_capability())) is not None:
        flags -= ATEN_WIDTHS - aten
    return {name: name in flags for name in FEATURES}


def openmp_runtime() -> str:
    """Which OpenMP library this process loaded (GNU libgomp in the PyPI wheels, Intel's
    libiomp5 in some conda builds): their waiting settings differ (GOMP_SPINCOUNT, KMP_BLOCKTIME)."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return "unknown"
    for name, label in (("libgomp", "GNU libgomp"), ("libiomp5", "Intel libiomp5"), ("libomp", "LLVM libomp")):
        if name in maps:
            return label
    return "none found"


def torch_build() -> dict[str, str]:
    info = torch.__config__.parallel_info()
    backend = re.search(r"ATen parallel backend: (.+)", info)
    onednn = re.search(r"MKL-DNN v([\d.]+)", info)
    return {"torch": torch.__version__, "parallel": backend.group(1).strip() if backend else "unknown",
            "openmp_runtime": openmp_runtime(),
            "onednn": onednn.group(1) if onednn else "none", "cpu_capability": torch.backends.cpu.get_cpu_capability()}


def describe(device: torch.device) -> dict:
    """One dict for a benchmark line or a log: the machine as far as speed is concerned."""
    model, _ = cpu_model_and_flags()
    record = {"cpu": model, "cpu_count": os.cpu_count(), "cpu_features": [n for n, on in cpu_features().items() if on],
              **torch_build(), "threads": torch.get_num_threads(),
              "omp": {k: os.environ[k] for k in OMP_SETTINGS if k in os.environ}}
    if caps := {k: os.environ[k] for k in ISA_SETTINGS if k in os.environ}:
        record["isa_caps"] = caps
    if device.type == "cuda":
        record["gpu"] = torch.cuda.get_device_name(device)
    try:
        record["load_average"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    return record


def signature(device: torch.device) -> str:
    """A stable key for choices measured on this machine (no load, no thread-count noise)."""
    model, _ = cpu_model_and_flags()
    features = "+".join(n for n, on in cpu_features().items() if on) or "none"
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{model}|{features}|{os.cpu_count()}cpu"
    return f"{where}|torch {torch.__version__}"
