"""The single-process faults: SIGKILL, stop signals, a full disk, a corrupt 'latest', NaN weights.

Each trial takes (trial index, rng, pairs folder, work folder, the oracle's tensors) and returns
one JSON-able record whose ``lost`` says whether the user lost the run."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from benchmarks.fault_runs import (ENV, STEPS, all_checkpoints_load, command, finish, one_line_error, run, same,
                        start_and_wait_for_step, training_of)

from engine.checkpoint import PAUSE_IN_SAVE_ENV


def kill_trial(i: int, rng: random.Random, pairs: Path, work: Path, oracle: dict) -> dict:
    folder, cmd = work / f"kill{i}", command(pairs, work, f"kill{i}")
    inside_save = i % 4 == 3
    if inside_save:
        # Every write held open for 1 s: the kill lands between data and rename.
        env = {**ENV, PAUSE_IN_SAVE_ENV: "1"}
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        target = 2 * rng.randint(1, STEPS // 2 - 1)  # 'latest' is written after every 2nd sample
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and proc.poll() is None:
            temporaries = list(folder.glob(".latest.pt.*.tmp"))
            if temporaries and (not (folder / "latest.pt").exists()
                                or torch.load(folder / "latest.pt", weights_only=True)["state"]["step"] >= target - 1):
                break
            time.sleep(0.02)
        moment = f"inside the write of 'latest' after step >= {target}"
    else:
        step = rng.randint(1, STEPS - 1)
        proc = start_and_wait_for_step(cmd, step)
        delay = rng.uniform(0, 0.5)
        time.sleep(delay)
        moment = f"{delay:.2f} s after step {step} was logged"
    proc.kill()
    proc.wait()
    loadable = all_checkpoints_load(folder)
    temporaries = len(list(folder.glob(".*tmp")))
    finished, exact = finish(cmd, folder, oracle)
    return {"fault": "kill", "trial": i, "moment": moment, "temporaries_after_kill": temporaries,
            "checkpoints_load": loadable, "finished": finished, "bit_exact": exact, "lost": not (loadable and exact)}


def signal_trial(i: int, rng: random.Random, pairs: Path, work: Path, oracle: dict) -> dict:
    signum = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)[i % 3]
    folder, cmd = work / f"signal{i}", command(pairs, work, f"signal{i}")
    step = rng.randint(1, STEPS - 1)
    proc = start_and_wait_for_step(cmd, step)
    proc.send_signal(signum)
    status = proc.wait()
    saved = torch.load(folder / "latest.pt", weights_only=True)["state"]["step"]
    finished, exact = finish(cmd, folder, oracle)
    ok = status == 128 + signum and saved >= step
    return {"fault": "signal", "trial": i, "signal": signal.Signals(signum).name, "after_step": step,
            "exit_status": status, "latest_step": saved, "finished": finished, "bit_exact": exact,
            "lost": not (ok and exact)}


def mount_tmpfs(target: Path, size: int) -> bool:
    target.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(target)],
                          capture_output=True).returncode == 0


def enospc_trial(i: int, rng: random.Random, pairs: Path, work: Path, oracle: dict) -> dict:
    probe = work / f"probe{i}"
    done = run([*command(pairs, probe, "p"), "--max_steps", "1"])
    assert done.returncode == 0, done.stderr
    full, gen = (probe / "p" / "latest.pt").stat().st_size, (probe / "p" / "latest_net_G.pt").stat().st_size
    disk = work / f"disk{i}"
    # Room for one save and some of a second one: the second 'latest' cannot be written.
    size = full + gen + 64 * 1024 + rng.randint(full // 4, 3 * full // 4)
    mounted = mount_tmpfs(disk, size)
    try:
        if mounted:
            done = run(command(pairs, disk, "full"))
        else:  # no mounting here: the same OSError, raised at the third write by a wrapper
            code = ("import errno, os, sys, torch; real = torch.save; n = [0]\n"
                    "def save(*a, **k):\n    n[0] += 1\n"
                    "    if n[0] > 2: raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))\n"
                    "    return real(*a, **k)\n"
                    f"torch.save = save; sys.argv = {command(pairs, disk, 'full')[1:]!r}\n"
                    "import runpy; runpy.run_path(sys.argv[0], run_name='__main__')")
            done = run([sys.executable, "-c", code])
        folder = disk / "full"
        message = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ""
        intact = all_checkpoints_load(folder) and (folder / "latest.pt").exists()
        ok = (done.returncode == 1 and one_line_error(done) and "No space left on device" in message
              and intact and not list(folder.glob(".*tmp")))
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(disk)], check=False)
    return {"fault": "enospc", "trial": i, "real_tmpfs": mounted, "tmpfs_bytes": size, "message": message,
            "previous_intact": intact, "lost": not ok, "bit_exact": None}


def corrupt_trial(i: int, rng: random.Random, pairs: Path, work: Path, oracle: dict) -> dict:
    folder, cmd = work / f"corrupt{i}", command(pairs, work, f"corrupt{i}")
    assert run([*cmd, "--max_steps", "6"]).returncode == 0  # 1.pt at step 4, latest at 6
    latest = folder / "latest.pt"
    data = latest.read_bytes()
    how = "truncated" if i % 2 == 0 else "zip directory overwritten"
    if i % 2 == 0:
        latest.write_bytes(data[:rng.randint(0, len(data) - 1)])
    else:
        cut = len(data) - rng.randint(64, 1024)
        latest.write_bytes(data[:cut] + rng.randbytes(len(data) - cut))
    os.utime(folder / "1.pt")
    explicit = run([*cmd[:-2], "--continue_train"])
    named = (explicit.returncode == 1 and one_line_error(explicit) and str(latest) in explicit.stderr
             and "resume with --continue_train --epoch 1" in explicit.stderr)
    auto = run(cmd)
    warned = "does not load; resuming from 1.pt" in auto.stdout + auto.stderr
    exact = auto.returncode == 0 and same(training_of(latest), oracle)
    return {"fault": "corrupt", "trial": i, "how": how, "explicit_names_file_and_epoch": named,
            "auto_warned": warned, "bit_exact": exact, "lost": not (named and warned and exact)}


def nan_trial(i: int, rng: random.Random, pairs: Path, work: Path, oracle: dict) -> dict:
    """G's weights set to NaN after a random step, by a wrapper around the training step."""
    step = rng.randint(2, STEPS - 1)
    folder = work / f"nan{i}"
    code = ("import sys, torch, runpy\n"
            "import train\n"
            "real = train.report_and_save\n"
            "def report(run, model, state, *rest):\n"
            f"    if state.step == {step}:\n"
            "        with torch.no_grad(): next(iter(model.nets['G'].parameters())).fill_(float('nan'))\n"
            "    real(run, model, state, *rest)\n"
            "train.report_and_save = report\n"
            f"sys.exit(train.main({command(pairs, work, f'nan{i}')[2:]!r}))\n")
    done = run([sys.executable, "-c", code])
    saved = training_of(folder / "latest.pt")
    finite = all(bool(torch.isfinite(v).all()) for net in saved["nets"].values() for v in net.values()
                 if v.is_floating_point())
    ok = (done.returncode == 1 and one_line_error(done) and "diverged" in done.stderr and finite
          and saved["state"]["step"] < step)
    return {"fault": "nan", "trial": i, "nan_after_step": step, "latest_step": saved["state"]["step"],
            "latest_finite": finite, "message": done.stderr.strip()[-200:], "lost": not ok, "bit_exact": None}
