"""``train.py --nproc N``: start N training processes on this machine without torchrun.

Each child gets the environment torchrun would give it (RANK, WORLD_SIZE, LOCAL_RANK,
LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT on a free loopback port) and then runs the same
worker as a torchrun process would, so there is one code path for both launchers. When any
child fails, torch.multiprocessing stops the others: the job ends instead of waiting for the
process-group timeout.
"""
from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator, NoReturn

import torch
import torch.multiprocessing as mp

from engine.stop import STOP_SIGNALS, exit_status
from util.errors import UserError

log = logging.getLogger(__name__)

# How long the launcher waits for its children to finish by themselves once one has ended (a
# stop signal: the others are saving or leaving the same collective) before it terminates them.
STOP_GRACE_S = 60.0
FAILURE_GRACE_S = 5.0

Worker = Callable[[Any], int]  # takes the parsed options, returns an exit status

# The status of a rank of this launcher whose job has already said why it ended, in full (every
# rank stopped at the same step and rank 0 printed the reason): the launcher adds no line of its
# own and the job exits 1. Under torchrun ranks exit 1 as usual (LAUNCHED_HERE is not set).
REPORTED = 75
LAUNCHED_HERE = "PIX2PIX_NPROC_CHILD"


def reported_status() -> int:
    """What a rank returns for a failure that its job has reported in full."""
    return REPORTED if os.environ.get(LAUNCHED_HERE) == "1" else 1


class LaunchError(UserError, RuntimeError):
    """A child process failed; ``exit_code`` is what the whole job should exit with."""

    def __init__(self, message: str, exit_code: int = 1, stopped_by_signal: bool = False,
                 reported: bool = False) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.stopped_by_signal = stopped_by_signal  # a requested stop, not a failure
        self.reported = reported   # the ranks have said it all (REPORTED): nothing to add


def processes_to_start(nproc: int, gpu_ids: list[int]) -> int:
    """How many processes a plain ``python train.py`` starts: --nproc when given, else one per
    id in --gpu_ids (so ``--gpu_ids 0,1`` trains on both GPUs), else one."""
    if nproc and len(gpu_ids) > 1 and nproc != len(gpu_ids):
        raise LaunchError(f"--nproc {nproc} does not match --gpu_ids {','.join(map(str, gpu_ids))}: "
                          "one process drives one GPU; drop one of the two options", exit_code=2)
    if nproc:
        if gpu_ids and nproc > torch.cuda.device_count():
            raise LaunchError(f"--nproc {nproc} asks for one GPU per process but this machine has "
                              f"{torch.cuda.device_count()}; use --gpu_ids -1 for CPU processes", exit_code=2)
        return nproc
    return max(len(gpu_ids), 1)


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_threads_per_process(nprocs: int) -> int:
    # N processes each using every core fight over them; torchrun likewise sets OMP_NUM_THREADS.
    return max(1, (os.cpu_count() or 1) // nprocs)


def _child(local_rank: int, worker: Worker, options: Any, nprocs: int, port: int, threads: int) -> None:
    # A process group of its own: a terminal's Ctrl-C then reaches the launcher only, which
    # passes it on once. Reaching every process directly as well would be a second signal
    # for the ranks, which stops them at once instead of after a save (engine/stop.py).
    os.setpgid(0, 0)
    os.environ.update(RANK=str(local_rank), LOCAL_RANK=str(local_rank), WORLD_SIZE=str(nprocs),
                      LOCAL_WORLD_SIZE=str(nprocs), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
                      **{LAUNCHED_HERE: "1"})
    if sys.platform.startswith("linux"):
        # One machine: keep gloo on loopback whatever the host name resolves to.
        os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    torch.set_num_threads(threads)
    # The parent sees the exit code (and stops the other ranks when it is not 0).
    end_rank(worker(options))


def end_rank(status: int) -> NoReturn:
    """Leave a rank's process with ``status``, skipping the interpreter's finalization.

    By then the rank has finished everything it owns: checkpoints written, the process group
    destroyed, logs closed. What is left is the teardown of torch's C++ globals at exit, where
    gloo ranks now and then abort ("terminate called without an active exception", SIGABRT from
    a C++ thread while the main thread has no Python frame left), under this launcher and under
    torchrun alike. The parent would then report a rank killed by signal 6 after a complete run.
    os._exit skips that teardown."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):   # closed or redirected away: nothing left to lose
            pass
    os._exit(status)


class _Forwarder:
    """Passes the stop signals the launcher receives on to its children, which save and stop."""

    def __init__(self, context: mp.ProcessContext) -> None:
        self.context = context
        self.signum: int | None = None

    def handle(self, signum: int, frame: object) -> None:
        self.signum = self.signum or signum
        for process in self.context.processes:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signum)

    @contextmanager
    def installed(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle) for sig in STOP_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _grace_s(forwarder: _Forwarder) -> float:
    # After a stop signal the ranks are saving: give them time. After a failure the others may
    # be stuck in a collective or stalled: a short wait for their last line, then they are killed.
    return STOP_GRACE_S if forwarder.signum is not None else FAILURE_GRACE_S


def launch(worker: Worker, options: Any, nprocs: int) -> None:
    """Run ``worker(options)`` in ``nprocs`` spawned processes; return when all succeeded.

    Raises :class:`LaunchError` naming the first rank that failed (the others are stopped), or
    with ``stopped_by_signal`` set when a stop signal was passed on and the ranks stopped.
    ``worker`` must be importable by name (a module-level function), as spawn pickles it.
    """
    port = free_loopback_port()
    threads = cpu_threads_per_process(nprocs)
    log.info("starting %d processes (master 127.0.0.1:%d)", nprocs, port)
    context = mp.start_processes(_child, args=(worker, options, nprocs, port, threads), nprocs=nprocs,
                                 join=False, start_method="spawn")
    forwarder = _Forwarder(context)
    try:
        with forwarder.installed():
            # The grace period lets the other ranks finish on their own once one has exited:
            # after a stop signal they all leave together, just after their common save.
            while not context.join(timeout=1.0, grace_period=_grace_s(forwarder)):
                pass
    except mp.ProcessExitedException as err:
        if forwarder.signum is not None:
            codes = sorted({p.exitcode for p in context.processes})
            raise LaunchError(f"stopped by {signal.Signals(forwarder.signum).name}; the {nprocs} processes exited "
                              f"with status {', '.join(map(str, codes))}", exit_code=exit_status(forwarder.signum),
                              stopped_by_signal=True) from None
        if err.exit_code == REPORTED:
            raise LaunchError("", exit_code=1, reported=True) from None
        code = err.exit_code if err.exit_code and err.exit_code > 0 else 1
        how = f"exited with status {err.exit_code}" if err.exit_code >= 0 else f"was killed by signal {-err.exit_code}"
        raise LaunchError(f"rank {err.error_index} {how}; the other processes were stopped", exit_code=code) from None
    except mp.ProcessRaisedException as err:
        # An unexpected exception (a bug): keep its traceback, it is what one needs to fix it.
        raise LaunchError(f"rank {err.error_index} raised an exception; the other processes were stopped:\n"
                          f"{err}") from None
    finally:
        # After Ctrl-C or a stop signal the children save and print their line: let them.
        deadline = time.monotonic() + _grace_s(forwarder)
        for process in context.processes:
            process.join(max(0.0, deadline - time.monotonic()))
        for process in context.processes:
            if process.is_alive():
                process.terminate()
                process.join(10)
                if process.is_alive():
                    process.kill()
