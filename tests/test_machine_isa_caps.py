"""engine/machine.py: the CPU features our rules read are the ones this process's kernels may
use, so a run under an ISA cap (ONEDNN_MAX_CPU_ISA / DNNL_MAX_CPU_ISA, ATEN_CPU_CAPABILITY)
takes the rules of the CPU it imitates and keys its measured choices apart. The oracle is
oneDNN itself: the instruction set it reports when it runs a convolution under the same cap."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from engine import machine
from models.networks import conv

ROOT = Path(__file__).resolve().parents[1]
SAPPHIRE_RAPIDS = frozenset({"avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16", "fma"})
CAP_VARS = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")

PROBE = """
import json, torch
from engine.machine import cpu_features
torch.nn.functional.conv2d(torch.randn(1, 64, 32, 32), torch.randn(64, 64, 3, 3))
print("FEATURES " + json.dumps(cpu_features()), flush=True)
"""


def onednn_isa_and_ours(cap: str | None) -> tuple[str, dict[str, bool]]:
    env = {k: v for k, v in os.environ.items() if k not in CAP_VARS}
    env.update(ONEDNN_VERBOSE="1", PYTHONPATH=str(ROOT))
    if cap is not None:
        env["DNNL_MAX_CPU_ISA"] = cap
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout
    isa = next(line.split("isa:", 1)[1] for line in out.splitlines() if ",info,cpu,isa:" in line)
    ours = json.loads(next(line for line in out.splitlines() if line.startswith("FEATURES "))[9:])
    return isa, ours


def what_onednn_says(isa: str) -> dict[str, bool]:
    """oneDNN's own words for its instruction set ('Intel AVX2', 'Intel AVX-512 with Intel DL
    Boost and bfloat16 support', 'Intel AVX 10.1', 'Intel AVX10.1 and Intel AMX ...')."""
    avx10 = "AVX10" in isa or "AVX 10" in isa
    avx512 = "AVX-512" in isa or avx10
    return {"amx_tile": "AMX" in isa, "avx512_bf16": "bfloat16" in isa or avx10,
            "avx512f": avx512, "avx2": avx512 or "AVX2" in isa}


@pytest.mark.parametrize("cap", [None, "AVX2", "AVX512_CORE", "AVX512_CORE_BF16", "AVX10_2_512", "AVX512_CORE_AMX"])
def test_our_features_are_what_onednn_runs_under_each_cap(cap):
    isa, ours = onednn_isa_and_ours(cap)
    said = what_onednn_says(isa)
    assert {k: ours[k] for k in said} == said, isa


@pytest.fixture
def amx_machine(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setattr(machine, "cpu_model_and_flags", lambda: ("Xeon", SAPPHIRE_RAPIDS))
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    for name in CAP_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_an_avx2_cap_on_an_amx_cpu_takes_the_avx2_rules_and_its_own_cache_key(amx_machine):
    cpu = torch.device("cpu")
    uncapped, rule = machine.signature(cpu), conv.default_down_max_out_side()
    assert rule == 8 and "amx_tile" in uncapped
    amx_machine.setenv("DNNL_MAX_CPU_ISA", "avx2")   # oneDNN reads it case-blind
    assert machine.cpu_features() == {"amx_bf16": False, "amx_tile": False, "avx512_bf16": False,
                                      "avx512f": False, "avx2": True}
    assert conv.default_down_max_out_side() == 1   # the rule measured without AMX
    assert machine.signature(cpu) != uncapped
    assert machine.describe(cpu)["isa_caps"] == {"DNNL_MAX_CPU_ISA": "avx2"}


def test_onednn_prefix_wins_and_unknown_names_cap_nothing(amx_machine):
    amx_machine.setenv("DNNL_MAX_CPU_ISA", "AVX2")
    amx_machine.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_BF16")
    assert machine.cpu_features()["avx512_bf16"] and not machine.cpu_features()["amx_tile"]
    amx_machine.setenv("ONEDNN_MAX_CPU_ISA", "ALL")
    assert all(machine.cpu_features().values())
    amx_machine.setenv("ONEDNN_MAX_CPU_ISA", "no-such-isa")
    assert all(machine.cpu_features().values())


def test_atens_capability_lowers_only_the_plain_vector_widths(amx_machine):
    amx_machine.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    assert machine.cpu_features() == {"amx_bf16": True, "amx_tile": True, "avx512_bf16": True,
                                      "avx512f": False, "avx2": True}
    amx_machine.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "DEFAULT")
    assert not machine.cpu_features()["avx2"]
    assert "isa_caps" not in machine.describe(torch.device("cpu"))   # no variable set: none recorded
