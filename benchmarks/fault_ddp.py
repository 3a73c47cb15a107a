"""The two-process fault: one rank SIGKILLed under ``torchrun --max_restarts=1``.

Both ranks are gloo processes on the CPU (8 images, 2 ranks x batch 2: 2 steps an epoch, 4
epochs, 'latest' after every step). torchrun sees the dead worker, stops the other one, starts
both again, and the same command resumes from 'latest' (``--continue_train auto``). The oracle
is the same torchrun command that nobody interrupted; "bit-exact" means the final checkpoint
equals the oracle's, tensor for tensor.
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.fault_runs import ENV, STEP_LINE, TRAIN, all_checkpoints_load, command, same, training_of

TORCHRUN = Path(sys.executable).with_name("torchrun")
DDP_STEPS = 8
DDP_ENV = {**ENV, "GLOO_SOCKET_IFNAME": "lo"}
_ORACLE: dict = {}


def torchrun_command(pairs: Path, ckpt: Path, name: str, max_restarts: int) -> list[str]:
    train_flags = command(pairs, ckpt, name, "--n_epochs", "4", "--save_latest_freq", "4")[2:]
    return [str(TORCHRUN), "--standalone", "--nproc_per_node=2", f"--max_restarts={max_restarts}", str(TRAIN),
            *train_flags]


def ddp_oracle(pairs: Path, work: Path) -> dict:
    if not _ORACLE:
        done = subprocess.run(torchrun_command(pairs, work, "ddp_oracle", 0), capture_output=True, text=True,
                              env=DDP_ENV, cwd=work, timeout=900)
        if done.returncode != 0:
            raise RuntimeError(f"the uninterrupted torchrun run failed:\n{done.stderr[-3000:]}")
        _ORACLE.update(training_of(work / "ddp_oracle" / "latest.pt"))
    return _ORACLE


def workers_by_rank(agent_pid: int) -> dict[int, int]:
    """{RANK: pid} of the torchrun agent's live worker processes, read from /proc."""
    found: dict[int, int] = {}
    for task in Path(f"/proc/{agent_pid}/task").glob("*"):
        try:
            pids = [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
        for pid in pids:
            try:
                environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            except OSError:
                continue
            ranks = [int(e.split(b"=", 1)[1]) for e in environ if e.startswith(b"RANK=")]
            if ranks:
                found[ranks[0]] = pid
    return found


def torchrun_kill_trial(i: int, rng: random.Random, pairs: Path, work: Path, oracle: dict) -> dict:
    """``oracle`` is the single-process one and not used: two processes have their own."""
    reference = ddp_oracle(pairs, work)
    name = f"ddp_kill{i}"
    folder, cmd = work / name, torchrun_command(pairs, work, name, 1)
    rank, step, delay = i % 2, rng.randint(1, DDP_STEPS - 2), rng.uniform(0, 0.3)
    job = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=DDP_ENV, cwd=work)
    assert job.stdout is not None
    lines, killed_pid = [], None
    for line in job.stdout:
        lines.append(line)
        match = STEP_LINE.search(line)
        if killed_pid is None and match and int(match.group(1)) >= step:
            time.sleep(delay)
            killed_pid = workers_by_rank(job.pid).get(rank)
            if killed_pid is not None:
                os.kill(killed_pid, signal.SIGKILL)
    status = job.wait()
    text = "".join(lines)
    attempts = 1
    while status != 0 and attempts < 3:  # a scheduler's retry of the very same command
        attempts += 1
        status = subprocess.run(cmd, capture_output=True, text=True, env=DDP_ENV, cwd=work, timeout=900).returncode
    loadable = all_checkpoints_load(folder)
    clean = not list(folder.glob(".*tmp"))
    exact = status == 0 and clean and same(training_of(folder / "latest.pt"), reference)
    return {"fault": "torchrun_kill", "trial": i, "rank_killed": rank if killed_pid else None,
            "moment": f"{delay:.2f} s after step {step} was logged", "torchrun_exit": job.returncode,
            "restarted_by_torchrun": "resumed from latest" in text, "commands_run": attempts,
            "checkpoints_load": loadable, "no_temporary_left": clean, "bit_exact": exact,
            "lost": not (loadable and exact)}
