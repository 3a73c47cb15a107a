"""The precision and the OpenMP waiting a training run uses: decided once, kept in every
checkpoint (engine/checkpoint/format.py, ``Execution``), reused by a resume.

``--amp auto`` is decided from the machine as the run starts (a probe, engine/amp_auto.py), and
so is the OpenMP waiting (util/omp_env.py, before torch is imported). Decided again on a resume,
a run resumed on a busier or quieter machine could go on in another precision than it started
with, and end with other weights than an uninterrupted run. So:

- a fresh run decides (the typed ``--amp``, or the probe's choice for ``auto``) and records it;
- a resume takes the precision its checkpoint records; only a precision typed on the resume
  (``--amp none|bf16|fp16``) overrides it, with a warning that the run is then no longer
  bit-identical to an uninterrupted one. A file that records no choice (written before the
  record existed, with ``--amp auto``) is decided again, with a warning.
- the waiting policy is recorded as the writing process had it, and not carried over: it can
  only be set before torch loads, and it changes how idle threads wait, not what any thread
  computes (the same partition of the work into the same number of threads), so weights
  trained under either are bit-identical (tests/test_execution_record.py trains under both).
"""
from __future__ import annotations

import logging
import os
from typing import Any

import torch

from engine import amp_auto
from engine.checkpoint import UNRECORDED, Execution
from util.omp_env import POLICY_ENV, requested_policy, wait_policy

log = logging.getLogger(__name__)


def amp_source(opt: Any, pin: str | None) -> str:
    """What decides the precision of a fresh run: the typed mode, the probe, or ``pin``
    (``amp_auto.amp_pin()``)."""
    if opt.amp != "auto":
        return f"--amp {opt.amp}"
    return "--amp auto" if pin == "measure" else f"--amp auto, pinned by {amp_auto.PIN_ENV}={pin}"


def typed_amp(opt: Any) -> str | None:
    """A precision typed on the command line (``auto`` typed asks for no particular one)."""
    return opt.amp if "amp" in getattr(opt, "explicit", ()) and opt.amp != "auto" else None


def settle_execution(opt: Any, model: Any, device: torch.device, recorded: Execution | None) -> Execution:
    """The precision and waiting this process trains with, set on ``model`` (``set_amp``).

    ``recorded``: what the checkpoint being resumed records (None: a fresh run, or the
    reference's files). Every rank calls this at the same point: a probe broadcasts rank 0's
    choice, and a recorded choice is the same file on every rank."""
    omp_wait = wait_policy(os.environ)
    if recorded is not None:
        if recorded.omp_wait not in (UNRECORDED, omp_wait):
            log.info("OpenMP wait %s here, %s in the checkpoint: threads wait differently, the arithmetic "
                     "is the same", omp_wait, recorded.omp_wait)
        typed = typed_amp(opt)
        if recorded.amp == UNRECORDED:
            log.warning("the checkpoint does not record the precision its --amp auto chose; deciding again, so "
                        "this run may not be bit-identical to an uninterrupted one")
        elif typed is None:
            log.info("precision %s, as the checkpoint records (decided by %s); not decided again", recorded.amp,
                     recorded.amp_source)
            model.set_amp(recorded.amp)
            return Execution(recorded.amp, recorded.amp_source, omp_wait)
        elif typed != recorded.amp:
            log.warning("--amp %s typed on a resume of a run trained in %s: it overrides the recorded precision, "
                        "and the run is no longer bit-identical to an uninterrupted one", typed, recorded.amp)
    pin = amp_auto.amp_pin() if opt.amp == "auto" else None   # read once, only where auto decides
    amp = amp_auto.choose_auto_amp(opt, model, model.amp, device, pin=pin)
    model.set_amp(amp)
    return Execution(model.amp, amp_source(opt, pin), omp_wait)


def resolved_options(execution: Execution) -> dict[str, str]:
    """For train_opt.txt: the value actually used beside each requested one."""
    return {"amp": f"{execution.amp} (decided by {execution.amp_source})",
            "omp_wait": f"{execution.omp_wait} ({POLICY_ENV}={requested_policy(os.environ)})"}
