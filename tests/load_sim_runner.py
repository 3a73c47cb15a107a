"""train.py under a simulated machine load, for tests/test_execution_resume.py:

``python -m tests.load_sim_runner BUSY FASTER -- <train.py arguments>``

- BUSY: the CPUs' worth of other work that util/omp_env.py's waiting rule reads as the process
  starts (its ``machine_busy`` reader is replaced before train.py is imported, so the rule
  itself, unchanged, picks the policy: PASSIVE when oversubscribed, else the default);
- FASTER: which precision (``none`` or ``bf16``) the ``--amp auto`` probe finds faster: its
  steps advance a fake clock instead of running (engine/amp_auto.py's measurement, decision,
  cache and broadcast are the real ones).

Prints nothing of its own; exits with train.py's status.
"""
from __future__ import annotations

import functools
import sys

import util.omp_env as omp_env


def main(args: list[str]) -> int:
    busy, faster, separator, argv = float(args[0]), args[1], args[2], args[3:]
    if separator != "--" or faster not in ("none", "bf16"):
        raise SystemExit("usage: python -m tests.load_sim_runner BUSY none|bf16 -- <train.py arguments>")
    omp_env.machine_busy = lambda: busy
    import train  # noqa: E402  (its import applies the waiting rule, which reads the fake load)
    from engine import amp_auto

    costs = {"none": 1.0, "bf16": 1.0}
    costs[faster] = 0.5
    clock = [0.0]

    def fake_probe_step(model, batch, amp, device):
        def step() -> None:
            clock[0] += costs[amp]
        return step
    amp_auto.probe_step = fake_probe_step
    amp_auto.choose_auto_amp = functools.partial(amp_auto.choose_auto_amp, timer=lambda: clock[0])
    return train.main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
