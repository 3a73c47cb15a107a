"""Stopping on a signal without losing work: SIGTERM (schedulers, ``docker stop``), SIGINT
(Ctrl-C) and SIGUSR1 (a pre-emption notice on some clusters).

The first signal only raises a flag; the training loop reads it after the step in flight, saves
``latest`` and ends with 128 + the signal's number (143, 130, 138), as a process killed by that
signal would, so schedulers and shells see the usual status. A second signal gives up at once:
:class:`ForcedStop` unwinds from wherever the process is, and since every checkpoint write is
atomic (temporary file, then rename) the files on disk stay whole.
"""
from __future__ import annotations

import logging
import signal
import threading
from contextlib import contextmanager
from typing import Iterator

import torch
import torch.distributed as dist

from engine.distributed import Runtime

log = logging.getLogger(__name__)

STOP_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)


def exit_status(signum: int) -> int:
    """What a shell reports for a process ended by this signal."""
    return 128 + signum


def signal_name(signum: int) -> str:
    return signal.Signals(signum).name


class ForcedStop(BaseException):
    """A second stop signal: leave now. A BaseException, like KeyboardInterrupt, so that no
    ``except Exception`` on the way swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"second {signal_name(signum)}")
        self.signum = signum


class TrainingStopped(Exception):
    """Raised by the training loop once ``latest`` is saved after a stop signal."""

    def __init__(self, signum: int, message: str) -> None:
        super().__init__(message)
        self.signum = signum


class StopRequest:
    """The first stop signal this process received (``signum``; None while none has come)."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def handle(self, signum: int, frame: object) -> None:
        if self.signum is not None:
            raise ForcedStop(signum)
        self.signum = signum
        # Logging from a signal handler is safe in CPython: the handler runs between bytecodes
        # of the main thread, not inside the interrupted C call.
        log.warning("%s received: finishing this step, saving 'latest', then stopping "
                    "(send it again to stop at once)", signal_name(signum))


@contextmanager
def stop_signals() -> Iterator[StopRequest]:
    """Catch the stop signals while the block runs; the previous handlers come back after it.
    Signal handlers exist only in the main thread: elsewhere (a training run started from a
    worker thread) the signals keep their usual effect."""
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return
    previous = {sig: signal.signal(sig, request.handle) for sig in STOP_SIGNALS}
    try:
        yield request
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def agreed_stop(request: StopRequest, runtime: Runtime) -> int | None:
    """The signal every process stops for, or None to go on. Under DDP a signal may reach one
    rank only, or reach them during different steps: an all-reduce (max) of the signal numbers
    after each step makes them all stop after the same one. One integer per step on gloo or
    nccl costs microseconds next to a training step."""
    mine = request.signum or 0
    if not runtime.distributed:
        return mine or None
    flag = torch.tensor([mine], dtype=torch.int32, device=runtime.device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return int(flag.item()) or None
