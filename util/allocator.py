"""Keep freed memory in the process during training, instead of handing it back to the OS.

torch's CPU allocator is plain malloc/free. With glibc's defaults every large tensor (at or
above the mmap threshold, 128 KiB to 32 MiB as it adapts) is a fresh mmap, and free memory at
the top of the heap is trimmed back to the OS; a training step allocates and frees the same
few hundred MB of activations and gradients every time, so each step faults every page in
again, zero-filled by the kernel. Keeping the memory removes most of those page faults and
shortens the step (benchmarks/README.md, "Kept memory"). The price: the process keeps its
peak heap.

``keep_freed_memory`` sets glibc's M_MMAP_MAX to 0 (large blocks come from the heap too; glibc
still maps memory itself if the heap cannot grow) and M_TRIM_THRESHOLD to 2 GiB, the largest
value mallopt takes. It does
nothing on other C libraries, when the user chose an allocator (LD_PRELOAD of jemalloc or
tcmalloc) or glibc malloc tunables (GLIBC_TUNABLES), or with PIX2PIX_MALLOC=default.
"""
from __future__ import annotations

import ctypes
import os
import platform
from typing import Mapping

M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4   # glibc's <malloc.h>
KEEP_UP_TO = 2**31 - 1                   # bytes of free heap top kept rather than trimmed (an int)
CHOICES = ("keep", "default")


def should_keep(env: Mapping[str, str], libc: str) -> bool:
    choice = env.get("PIX2PIX_MALLOC", "keep").lower()
    if choice not in CHOICES:
        raise ValueError(f"PIX2PIX_MALLOC={choice!r} is not one of {', '.join(CHOICES)}")
    user_chose = "malloc" in env.get("LD_PRELOAD", "") or "glibc.malloc" in env.get("GLIBC_TUNABLES", "")
    return choice == "keep" and libc == "glibc" and not user_chose


def keep_freed_memory() -> bool:
    """Apply the settings to this process; True when they were applied."""
    try:
        keep = should_keep(os.environ, platform.libc_ver()[0])
    except ValueError as err:
        raise SystemExit(f"error: {err}") from None
    if not keep:
        return False
    mallopt = ctypes.CDLL(None).mallopt
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, KEEP_UP_TO))   # 1 = success
