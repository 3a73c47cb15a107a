"""Seeded CPU runs give the same bits on a loaded machine too (util/omp_env.py, REPRODUCIBLE_MATH).

Two identical 2-thread training runs once ended 1.2e-6 apart: MKL's sgemm, called inside a torch
parallel region by the U-Net's native tiny-layer kernels (models/networks/conv.py), did not
always sum in the same order. Each check runs in a fresh interpreter, as the drivers start:
MKL reads its settings once, at its first call.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from util.omp_env import REPRODUCIBLE_MATH, reproducible_math

ROOT = Path(__file__).resolve().parents[1]
SET_KEYS = (*REPRODUCIBLE_MATH, "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME", "PIX2PIX_OMP_POLICY",
            "OMP_NUM_THREADS", "MKL_NUM_THREADS")

# What MKL itself says it runs with, read through the service functions libtorch_cpu exports
# (MKL is linked into it): mkl_cbwr_get(MKL_CBWR_BRANCH) is 1 for MKL_CBWR_OFF, 2 for AUTO,
# 3 for COMPATIBLE; mkl_get_dynamic 1 when MKL may change its thread count.
MKL_STATE = """
import ctypes, json, os, torch
lib = ctypes.CDLL(os.path.join(os.path.dirname(torch.__file__), "lib", "libtorch_cpu.so"))
lib.mkl_serv_cbwr_get.restype = ctypes.c_int
lib.mkl_serv_cbwr_get.argtypes = [ctypes.c_int]
lib.mkl_serv_get_dynamic.restype = ctypes.c_int
torch.mm(torch.ones(8, 8), torch.ones(8, 8))   # MKL reads its settings at its first call
print(json.dumps({"branch": lib.mkl_serv_cbwr_get(1), "dynamic": lib.mkl_serv_get_dynamic(),
                  "env": {k: os.environ.get(k) for k in ("MKL_CBWR", "MKL_DYNAMIC", "OMP_DYNAMIC")}}))
"""
DRIVER_START = "from util.omp_env import set_omp_wait_policy; set_omp_wait_policy()\n"

# The innermost down convolution's input gradient at batch 1 (1x1 output, 64 -> 64 channels):
# aten._slow_conv2d_backward runs its GEMM inside at::parallel_for, the call that differed
# between runs. The same inputs, called many times; every result must equal the first.
REPEATED_GEMM = """
import torch
torch.manual_seed(0)
grad = torch.randn(1, 64, 1, 1); x = torch.randn(1, 64, 2, 2); w = torch.randn(64, 64, 4, 4)
def grad_input():
    return torch.ops.aten._slow_conv2d_backward(grad, x, w, [4, 4], [2, 2], [1, 1], [True, False, False])[0]
first = grad_input()
differ = sum(not torch.equal(grad_input(), first) for _ in range(2000))
print(torch.get_num_threads(), differ)
"""


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in SET_KEYS}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**clean, **env}, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out


def test_the_drivers_start_mkl_in_its_reproducible_mode():
    state = json.loads(run_python(DRIVER_START + MKL_STATE).stdout)
    assert state == {"branch": 2, "dynamic": 0,
                     "env": {"MKL_CBWR": "AUTO", "MKL_DYNAMIC": "FALSE", "OMP_DYNAMIC": "FALSE"}}
    # Without the call (torch's defaults, as before the fix): MKL's CNR off and dynamic threads on.
    # This is what a run that keeps the default thread count had: only torch.set_num_threads
    # (--torch_threads) turns MKL_DYNAMIC off.
    plain = json.loads(run_python(MKL_STATE).stdout)
    assert (plain["branch"], plain["dynamic"]) == (1, 1)


def test_values_the_user_set_are_kept():
    assert reproducible_math({"MKL_CBWR": "COMPATIBLE", "OMP_DYNAMIC": "TRUE"}) == {"MKL_DYNAMIC": "FALSE"}
    assert reproducible_math({}) == REPRODUCIBLE_MATH
    state = json.loads(run_python(DRIVER_START + MKL_STATE, MKL_CBWR="COMPATIBLE").stdout)
    assert state["branch"] == 3 and state["env"]["MKL_CBWR"] == "COMPATIBLE"


def test_a_gemm_in_a_parallel_region_gives_the_same_bits_every_call_under_load():
    """2 threads, with a busy-spinning process competing for the cores. Before the fix the first
    call of the process already differed from the later ones (AVX512 Xeon, quiet or loaded)."""
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        threads, differ = run_python(DRIVER_START + REPEATED_GEMM, OMP_NUM_THREADS="2").stdout.split()
    finally:
        spinner.kill()
        spinner.wait()
    assert (threads, differ) == ("2", "0")
