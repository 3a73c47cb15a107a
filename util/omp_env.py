"""How OpenMP threads wait, chosen before ``import torch`` (no torch here).

torch's CPU kernels run in OpenMP teams (GNU libgomp in the PyPI build). Between parallel
regions an idle thread either spins (it holds its core, and answers the next region at once) or
sleeps (the core is free for others, and waking it costs a system call per region). Neither
is right everywhere (benchmarks/README.md, "OpenMP waiting"):
- on a machine with a free core per thread, a step of many small ops pays a wake-up for each
  op when threads sleep (PASSIVE), a large share of a small step;
- when other processes want the same cores, a thread that spins without limit (ACTIVE) holds
  a core that the team's last worker needs, and every region waits for a descheduled thread:
  a step can take many times as long.
libgomp's default is a bounded spin (about 300k iterations, then sleep). The policy below keeps
that default when the machine has a core free for each of our threads, and asks for PASSIVE
only when it is already oversubscribed as the process starts.

"Oversubscribed" is read from the tasks that want a CPU right now (``procs_running`` in
/proc/stat, a few reads 10 ms apart, median, less this process), not from the load average:
the 1-minute average still counts a run that ended seconds ago, so back-to-back runs (a
benchmark, a sweep, our own previous run) would have read as busy and slept needlessly on a
quiet machine. Where /proc/stat is missing the load average stands in.

Whatever the user set (OMP_WAIT_POLICY, GOMP_SPINCOUNT, KMP_BLOCKTIME) is left alone;
PIX2PIX_OMP_POLICY=default|passive|auto overrides the choice (auto: the rule above).

The same call also asks MKL for reproducible arithmetic (``REPRODUCIBLE_MATH``), which it too
reads only before its first call. Without it, two identical seeded CPU runs with 2 threads
could end with other weights (1e-6 apart after 8 steps): MKL's sgemm, called inside a torch
parallel region (``_slow_conv2d_backward`` of the U-Net's tiny layers, models/networks/conv.py,
runs its GEMM so at batch 1), now and then summed in another order for the same inputs (the
first call of a process, and more often on a busy machine). MKL_CBWR=AUTO fixes one code path
for this CPU (Intel's "conditional numerical reproducibility"); MKL_DYNAMIC=FALSE and
OMP_DYNAMIC=FALSE keep the number of threads from changing with the load, the other two
conditions Intel lists for it. tests/test_determinism_under_load.py checks all three. A value
the user set is kept.
"""
from __future__ import annotations

import os
import statistics
import sys
import time
from typing import Callable, Mapping

USER_KEYS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")
POLICY_ENV = "PIX2PIX_OMP_POLICY"
POLICIES = ("auto", "default", "passive")
# MKL's conditional numerical reproducibility: the same bits from run to run on one machine
# with a fixed thread count (torch's own set_num_threads turns MKL_DYNAMIC off too, but a run
# that keeps the default thread count never calls it). No measurable cost here
# (benchmarks/README.md, "Reproducible MKL").
REPRODUCIBLE_MATH = {"MKL_CBWR": "AUTO", "MKL_DYNAMIC": "FALSE", "OMP_DYNAMIC": "FALSE"}
# How loaded the machine was as this process started ("busy": oversubscribed, "quiet"), as
# set_omp_wait_policy read it before torch loaded; None when it did not run. --amp auto keeps
# its decisions apart by it (engine/amp_auto.py).
start_load: str | None = None


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def choose_omp_wait(env: Mapping[str, str], busy: Callable[[], float], cpus: int, threads: int) -> dict[str, str]:
    """The variables to add to ``env``: {} keeps the runtime's default (or the user's choice).

    ``busy``: reads how many CPUs' worth of other work wants to run as this process starts
    (called only when the rule needs it: reading takes a few tens of milliseconds);
    ``threads``: the OpenMP threads this process will start (torch's default is one per usable
    CPU). Oversubscribed means the others leave fewer free cores than we bring threads."""
    if any(key in env for key in USER_KEYS):
        return {}
    policy = requested_policy(env)
    if policy == "passive" or (policy == "auto" and oversubscribed(busy(), threads, cpus)):
        return {"OMP_WAIT_POLICY": "PASSIVE"}
    return {}


def requested_policy(env: Mapping[str, str]) -> str:
    """``PIX2PIX_OMP_POLICY`` as set in ``env`` (``auto`` when unset): the one place it is read.
    Raises ValueError for a value that is none of ``POLICIES``."""
    policy = env.get(POLICY_ENV, "auto").lower()
    if policy not in POLICIES:
        raise ValueError(f"{POLICY_ENV}={policy!r} is not one of {', '.join(POLICIES)}")
    return policy


def reproducible_math(env: Mapping[str, str]) -> dict[str, str]:
    """The variables of ``REPRODUCIBLE_MATH`` to add to ``env``: those the user has not set."""
    return {key: value for key, value in REPRODUCIBLE_MATH.items() if key not in env}


def oversubscribed(others: float, threads: int, cpus: int) -> bool:
    """Other work leaves fewer free cores than we bring threads."""
    return others + threads > cpus + 0.5


def wait_policy(env: Mapping[str, str]) -> str:
    """How OpenMP threads wait in a process started with ``env``, as checkpoints record it:
    OMP_WAIT_POLICY's value (PASSIVE, ACTIVE) and the other waiting variables set, else
    ``default`` (libgomp's bounded spin)."""
    parts = [env["OMP_WAIT_POLICY"].upper()] if "OMP_WAIT_POLICY" in env else []
    parts += [f"{key}={env[key]}" for key in USER_KEYS[1:] if key in env]
    return " ".join(parts) or "default"


def others_running(stat_path: str = "/proc/stat", reads: int = 5, interval_s: float = 0.01,
                   sleep: Callable[[float], None] = time.sleep) -> float | None:
    """Runnable tasks other than this process right now (the median of ``reads`` reads of
    ``procs_running``, which counts the reader itself, ``interval_s`` apart); None where the
    file is unreadable."""
    counts = []
    for i in range(reads):
        try:
            with open(stat_path) as stat:
                line = next((ln for ln in stat if ln.startswith("procs_running ")), None)
        except OSError:
            return None
        if line is None:
            return None
        counts.append(int(line.split()[1]) - 1)
        if i + 1 < reads:
            sleep(interval_s)
    return max(float(statistics.median(counts)), 0.0)


def machine_busy() -> float:
    """CPUs' worth of other work: the runnable count, else the 1-minute load average."""
    running = others_running()
    if running is not None:
        return running
    try:
        return os.getloadavg()[0]
    except OSError:
        return 0.0


def set_omp_wait_policy() -> dict[str, str] | None:
    """Apply :func:`choose_omp_wait` and :func:`reproducible_math` to this process and record
    ``start_load``; returns what the waiting rule added, or None when it is too late (torch,
    and with it the OpenMP runtime and MKL, is already loaded; once torch has run, its own
    spinning threads would count as other work)."""
    global start_load
    if "torch" in sys.modules:
        return None
    os.environ.update(reproducible_math(os.environ))
    cpus = usable_cpus()
    threads = int(os.environ.get("OMP_NUM_THREADS", "0") or 0) or cpus
    others = machine_busy()   # read once: start_load needs it whatever the policy
    try:
        chosen = choose_omp_wait(os.environ, lambda: others, cpus, threads)
    except ValueError as err:
        raise SystemExit(f"error: {err}") from None
    os.environ.update(chosen)
    start_load = "busy" if oversubscribed(others, threads, cpus) else "quiet"
    return chosen
