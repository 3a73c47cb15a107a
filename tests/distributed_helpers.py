"""Run a function in a few CPU processes joined by a gloo process group (for tests).

Each process runs ``fn(rank, world_size, *args)`` with the default group initialized and
returns its result to the caller through a file, so assertions stay in the parent process.
A deadline covers the whole run: a rank that fails or hangs in a collective makes the others
time out and the parent terminate them, so a broken test fails instead of hanging the suite.
"""
from __future__ import annotations

import os
import tempfile
import time
import traceback
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from engine.launch import end_rank, free_loopback_port


class DistributedRunError(RuntimeError):
    """A rank raised, died or did not finish in time."""


def _rank_main(rank: int, fn: Callable[..., Any], world_size: int, port: int, out_dir: str,
               timeout_s: float, args: tuple[Any, ...]) -> None:
    torch.set_num_threads(1)  # the ranks share the machine's few cores
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")  # stay on loopback, whatever the host has
    out = Path(out_dir)
    try:
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                                world_size=world_size, timeout=timedelta(seconds=timeout_s))
        try:
            result = fn(rank, world_size, *args)
        finally:
            dist.destroy_process_group()
        torch.save(result, out / f"rank{rank}.pt")
    except BaseException:
        (out / f"rank{rank}.err").write_text(traceback.format_exc())
        raise
    # As train.py's ranks do: skip the exit-time teardown in which gloo ranks sometimes abort
    # after their work is done (seen in this helper's fault test as well as in train.py's).
    end_rank(0)


def run_distributed(fn: Callable[..., Any], world_size: int = 2, *args: Any, timeout_s: float = 60.0) -> list[Any]:
    """Run ``fn(rank, world_size, *args)`` on ``world_size`` gloo ranks; return their results.

    ``fn`` and ``args`` must be picklable (a module-level function): the ranks are spawned.
    """
    with tempfile.TemporaryDirectory(prefix="dist_test_") as out_dir:
        context = mp.start_processes(_rank_main, args=(fn, world_size, free_loopback_port(), out_dir,
                                                       timeout_s, args),
                                     nprocs=world_size, join=False, start_method="spawn")
        deadline = time.monotonic() + timeout_s + 30  # spawning and importing torch take a while
        failure = None
        try:
            while not context.join(timeout=0.5):
                if time.monotonic() > deadline:
                    failure = f"did not finish within {timeout_s + 30:.0f} s"
                    break
        except (mp.ProcessRaisedException, mp.ProcessExitedException) as error:
            failure = str(error).strip().splitlines()[0]
        finally:
            for process in context.processes:
                if process.is_alive():
                    process.terminate()
                    process.join(5)
                    if process.is_alive():
                        process.kill()
        if failure is not None:
            # Every rank's traceback: the first rank to be noticed is often only a victim
            # ("connection closed by peer") of the one that really failed.
            errors = "\n".join(f"--- {p.stem}:\n{p.read_text()}" for p in sorted(Path(out_dir).glob("rank*.err")))
            raise DistributedRunError(f"distributed run failed ({failure}):\n{errors}")
        return [torch.load(Path(out_dir) / f"rank{r}.pt", weights_only=False) for r in range(world_size)]
