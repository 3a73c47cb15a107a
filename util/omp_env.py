"""How OpenMP threads wait, chosen before ``import torch`` (no torch here).

torch's CPU kernels run in OpenMP teams (GNU libgomp in the PyPI build). Between parallel
regions an idle thread either spins (it holds its core, and answers the next region at once) or
sleeps (the core is free for others, and waking it costs a system call per region). Neither
is right everywhere (issue 15, benchmarks/README.md "Waiting policy"):
- on a machine with a free core per thread, a step of many small ops pays a wake-up for each
  op when threads sleep: PASSIVE made the 128 px step 35-45% slower than libgomp's default;
- when other processes want the same cores, a thread that spins without limit (ACTIVE) holds
  a core that the team's last worker needs, and every region waits for a descheduled thread:
  a unet_128 forward took 1749 ms instead of 108 ms at load ~7.
libgomp's default is a bounded spin (about 300k iterations, then sleep). The policy below keeps
that default when the machine has a core free for each of our threads, and asks for PASSIVE
only when it is already oversubscribed as the process starts.

Whatever the user set (OMP_WAIT_POLICY, GOMP_SPINCOUNT, KMP_BLOCKTIME) is left alone;
PIX2PIX_OMP_POLICY=default|passive|auto overrides the choice (auto: the rule above).
"""
from __future__ import annotations

import os
import sys
from typing import Mapping

USER_KEYS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")
POLICIES = ("auto", "default", "passive")


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def choose_omp_wait(env: Mapping[str, str], load: float, cpus: int, threads: int) -> dict[str, str]:
    """The variables to add to ``env``: {} keeps the runtime's default (or the user's choice).

    ``load``: the 1-minute load average before this process runs; ``threads``: the OpenMP
    threads this process will start (torch's default is one per usable CPU). Oversubscribed
    means the others' load leaves fewer free cores than we bring threads."""
    if any(key in env for key in USER_KEYS):
        return {}
    policy = env.get("PIX2PIX_OMP_POLICY", "auto").lower()
    if policy not in POLICIES:
        raise ValueError(f"PIX2PIX_OMP_POLICY={policy!r} is not one of {', '.join(POLICIES)}")
    if policy == "passive" or (policy == "auto" and load + threads > cpus + 0.5):
        return {"OMP_WAIT_POLICY": "PASSIVE"}
    return {}


def set_omp_wait_policy() -> dict[str, str] | None:
    """Apply :func:`choose_omp_wait` to this process; returns what was added, or None when it
    is too late (torch, and with it the OpenMP runtime, is already loaded)."""
    if "torch" in sys.modules:
        return None
    cpus = usable_cpus()
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = 0.0
    threads = int(os.environ.get("OMP_NUM_THREADS", "0") or 0) or cpus
    try:
        chosen = choose_omp_wait(os.environ, load, cpus, threads)
    except ValueError as err:
        raise SystemExit(f"error: {err}") from None
    os.environ.update(chosen)
    return chosen


# The drivers' name for it from before issue 15 (train.py, test.py, translate.py call it).
prefer_passive_omp_wait = set_omp_wait_policy
