"""OpenMP settings that must be in the environment before ``import torch`` (no torch here).

torch's CPU kernels run in OpenMP teams whose idle threads spin-wait by default. When the
cores are shared (loader workers, a second process, other jobs), a spinning thread holds a
core that the team's last worker needs, and every parallel region waits for a descheduled
thread. Measured on a 2-core AMD EPYC at load ~7: a unet_128 forward took 1749 ms with two
spinning threads, 108 ms with two passive ones and 98 ms with one thread
(benchmarks/README.md). Passive waiting costs little on an idle machine and removes that
collapse, so drivers ask for it unless the user set a policy.
"""
from __future__ import annotations

import os
import sys


def prefer_passive_omp_wait() -> bool:
    """Set OMP_WAIT_POLICY=PASSIVE unless the user chose a policy; True when it took effect
    (False when torch, and with it the OpenMP runtime, was already loaded)."""
    if "torch" in sys.modules:
        return False
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return True
