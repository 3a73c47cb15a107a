"""util/allocator.py: freed memory stays in the process. The oracle is the kernel's count of
page faults (getrusage): a 64 MiB buffer allocated, written and freed again and again faults
all its pages in every time under glibc's defaults, and only the first time when kept."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from util.allocator import should_keep

ROOT = Path(__file__).resolve().parents[1]

CHURN = '''
import resource, sys
from util.allocator import keep_freed_memory
applied = keep_freed_memory()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
buf = bytearray(64 << 20); buf[::4096] = b"x" * len(buf[::4096]); del buf   # the first time
start = faults()
for _ in range(5):
    buf = bytearray(64 << 20)
    buf[::4096] = b"x" * len(buf[::4096])
    del buf
print(applied, (faults() - start) / 5)
'''


def churn(**env: str) -> tuple[bool, float]:
    clean = {k: v for k, v in os.environ.items() if k not in ("PIX2PIX_MALLOC", "GLIBC_TUNABLES", "LD_PRELOAD")}
    out = subprocess.run([sys.executable, "-c", CHURN], cwd=ROOT, env={**clean, **env}, capture_output=True,
                         text=True, timeout=120, check=True).stdout.split()
    return out[0] == "True", float(out[1])


def test_kept_memory_is_not_faulted_in_again():
    pages = (64 << 20) // 4096   # 16384
    applied, kept = churn()
    assert applied and kept < pages * 0.05
    applied, default = churn(PIX2PIX_MALLOC="default")
    assert not applied and default > pages * 0.9


@pytest.mark.parametrize("env,libc,expected", [
    ({}, "glibc", True),
    ({"PIX2PIX_MALLOC": "default"}, "glibc", False),
    ({"PIX2PIX_MALLOC": "KEEP"}, "glibc", True),
    ({}, "", False),                                                   # musl, macOS: not glibc
    ({"LD_PRELOAD": "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"}, "glibc", False),
    ({"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=0"}, "glibc", False),
])
def test_the_users_choice_wins(env, libc, expected):
    assert should_keep(env, libc) is expected


def test_a_bad_choice_is_one_line():
    bad = subprocess.run([sys.executable, "-c", "from util.allocator import keep_freed_memory; keep_freed_memory()"],
                         cwd=ROOT, env={**os.environ, "PIX2PIX_MALLOC": "huge"}, capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode != 0 and bad.stderr.strip() == "error: PIX2PIX_MALLOC='huge' is not one of keep, default"
