"""Fault campaign (issue 12): break short CPU training runs on purpose, rerun the same command,
and check that nothing is lost.

    python benchmarks/fault_campaign.py --trials 20        # a few minutes on 2 cores
    python benchmarks/fault_campaign.py --trials 4 --faults kill,corrupt

Every run trains tiny networks on 32 px pairs (8 images, batch 2, 3 epochs: 12 steps) with
``--continue_train auto`` and 'latest' saved after every step, in a child process with one
thread. The oracle is the same command run once without faults; "bit-exact" means the final
checkpoint equals the oracle's tensor for tensor (weights, optimizer states, counters).

Faults (one JSON line each, plus a summary table):
  kill      SIGKILL at a random moment of a random step; every 4th trial deterministically
            inside a checkpoint write (the PIX2PIX_TEST_PAUSE_IN_SAVE hook holds each write open for 1 s).
            After each kill every checkpoint file must load; the rerun must leave no temporary file.
  signal    SIGTERM / SIGINT / SIGUSR1 at a random step: exit 143 / 130 / 138 with 'latest' saved.
  enospc    a full disk during a save: a real tmpfs too small for the second save (mounted when
            this runs as root), else an OSError injected at the write: one line, the previous
            checkpoint intact, no partial file.
  corrupt   'latest' truncated or its zip directory overwritten: --continue_train fails with one
            line naming the file and the newest loadable checkpoint; auto falls back to it.
  nan       a NaN loss at a random step: the run stops with one line, the last checkpoint finite.
  visdom    the visdom server killed after a random step, started again 3 steps later: one
            warning, training goes on (and ends bit-exact), the restarted server gets points.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, emit, load_average  # noqa: E402

from engine.checkpoint import PAUSE_IN_SAVE_ENV  # noqa: E402
from support.visdom_server import VisdomServer  # noqa: E402

TRAIN = ROOT / "train.py"
STEPS = 12
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "PIX2PIX_AMP_AUTO": "native"}
STEP_LINE = re.compile(r"\(epoch \d+, step (\d+),")


def write_pairs(root: Path, n: int = 8, side: int = 32) -> Path:
    rng = np.random.default_rng(7)
    (root / "train").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        coarse = rng.integers(0, 256, size=(4, 8, 3), dtype=np.uint8)
        Image.fromarray(coarse).resize((2 * side, side), Image.BILINEAR).save(root / "train" / f"{i:03d}.png")
    return root


def command(pairs: Path, ckpt: Path, name: str, *extra: str) -> list[str]:
    return [sys.executable, str(TRAIN), "--dataroot", str(pairs), "--checkpoints_dir", str(ckpt), "--name", name,
            "--gpu_ids", "-1", "--netG", "resnet_6blocks", "--ngf", "4", "--ndf", "4", "--load_size", "32",
            "--crop_size", "32", "--preprocess", "none", "--num_threads", "0", "--display_id", "0", "--no_html",
            "--print_freq", "2", "--batch_size", "2", "--n_epochs", "3", "--n_epochs_decay", "0",
            "--save_latest_freq", "2", "--save_epoch_freq", "1", "--amp", "none", "--continue_train", "auto", *extra]


def run(cmd: list[str], env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, env=env or ENV, timeout=timeout)


def training_of(path: Path) -> dict:
    saved = torch.load(path, weights_only=True)
    return {"nets": saved["nets"], "optimizers": saved["optimizers"], "state": saved["state"]}


def same(a: dict, b: dict) -> bool:
    def equal(x, y) -> bool:
        if isinstance(x, torch.Tensor):
            return isinstance(y, torch.Tensor) and x.dtype == y.dtype and torch.equal(x, y)
        if isinstance(x, dict):
            return isinstance(y, dict) and x.keys() == y.keys() and all(equal(x[k], y[k]) for k in x)
        if isinstance(x, (list, tuple)):
            return isinstance(y, (list, tuple)) and len(x) == len(y) and all(map(equal, x, y))
        return x == y
    return equal(a, b)


def all_checkpoints_load(folder: Path) -> bool:
    try:
        for path in folder.glob("*.pt"):
            torch.load(path, weights_only=True)
        return True
    except Exception:
        return False


def one_line_error(done: subprocess.CompletedProcess) -> bool:
    lines = done.stderr.strip().splitlines()
    return len(lines) == 1 and "Traceback" not in done.stderr


def finish(cmd: list[str], folder: Path, oracle: dict, attempts: int = 3) -> tuple[bool, bool]:
    """Rerun the same command until it ends (a scheduler's retry); (finished, bit-exact)."""
    for _ in range(attempts):
        if run(cmd).returncode == 0:
            clean = not list(folder.glob(".*tmp"))
            return clean, clean and same(training_of(folder / "latest.pt"), oracle)
    return False, False


def start_and_wait_for_step(cmd: list[str], step: int, env: dict | None = None) -> subprocess.Popen:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env or ENV)
    assert proc.stdout is not None
    for line in proc.stdout:
        match = STEP_LINE.search(line)
        if match and int(match.group(1)) >= step:
            break
    return proc


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
                    f"sys.path.insert(0, {str(ROOT)!r}); import runpy; runpy.run_path(sys.argv[0], run_name='__main__')")
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
            f"sys.path.insert(0, {str(ROOT)!r}); import train\n"
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


# The visdom trials train 6 epochs (24 steps), so that a restarted server has steps left to show.
LONG = ("--n_epochs", "6")
_LONG_ORACLE: dict = {}


def long_oracle(pairs: Path, work: Path) -> dict:
    if not _LONG_ORACLE:
        done = run(command(pairs, work, "oracle_long", *LONG))
        assert done.returncode == 0, done.stderr[-2000:]
        _LONG_ORACLE.update(training_of(work / "oracle_long" / "latest.pt"))
    return _LONG_ORACLE


class CampaignVisdom(VisdomServer):
    """The shared loopback visdom server, plus reading back the loss points it holds."""

    def loss_points(self, env: str, window: str) -> list[float]:
        import warnings
        import visdom
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            client = visdom.Visdom(server="http://127.0.0.1", port=self.port, use_incoming_socket=False)
            data = client.get_window_data(window, env=env)
        if not data:
            return []
        return [x for trace in json.loads(data)["content"]["data"] for x in trace["x"]]


def visdom_trial(i: int, rng: random.Random, pairs: Path, work: Path, oracle: dict) -> dict:
    """Kill the server after a random step, start it again 3 steps later (training frozen with
    SIGSTOP meanwhile); the trainer looks for it at every point (RECONNECT_EVERY_S = 0 here;
    30 s by default)."""
    name, env_name = f"visdom{i}", f"campaign{i}"
    server = CampaignVisdom(work / f"visdom_home{i}")
    server.start()
    argv = command(pairs, work, name, "--display_id", "1", "--display_port", str(server.port), "--display_server",
                   "http://127.0.0.1", "--display_env", env_name, "--print_freq", "2", *LONG)[2:]
    code = (f"import sys; sys.path.insert(0, {str(ROOT)!r}); import reporting.sinks.visdom as v; "
            f"v.RECONNECT_EVERY_S = 0.0; import train; sys.exit(train.main({argv!r}))")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=ENV)
    assert proc.stdout is not None
    kill_after = rng.randint(2, 5)
    lines, restarted = [], False
    try:
        for line in proc.stdout:
            lines.append(line)
            match = STEP_LINE.search(line)
            step = int(match.group(1)) if match else 0
            if server.proc is not None and not restarted and step >= kill_after:
                server.kill()
            elif server.proc is None and step >= kill_after + 3:
                # Training is frozen while the server starts (seconds on a busy machine), so
                # that steps are left to show on it whatever the load.
                proc.send_signal(signal.SIGSTOP)
                try:
                    server.start()
                finally:
                    proc.send_signal(signal.SIGCONT)
                restarted = True
        status = proc.wait()
        points = server.loss_points(env_name, f"{name}_1_losses")
    finally:
        server.kill()
    text = "".join(lines)
    warnings = text.count("stopped answering")
    back = "live display is back" in text
    exact = status == 0 and same(training_of(work / name / "latest.pt"), long_oracle(pairs, work))
    ok = status == 0 and warnings == 1 and back and bool(points) and exact
    return {"fault": "visdom", "trial": i, "killed_after_step": kill_after, "exit_status": status,
            "warnings": warnings, "display_back": back, "points_on_restarted_server": len(points),
            "bit_exact": exact, "lost": not ok}


FAULTS: dict[str, Callable[..., dict]] = {"kill": kill_trial, "signal": signal_trial, "enospc": enospc_trial,
                                          "corrupt": corrupt_trial, "nan": nan_trial,
                                          "visdom": visdom_trial}
# Trials per fault for --trials N: the kills get N, the deterministic faults a few each.
def trials_for(fault: str, n: int) -> int:
    return n if fault == "kill" else max(1, min(n, {"signal": 6, "corrupt": 4}.get(fault, 2)))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=20, help="SIGKILL trials (the other faults get a few each)")
    p.add_argument("--faults", default=",".join(FAULTS), help=f"comma-separated, from: {', '.join(FAULTS)}")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "fault_campaign.jsonl"))
    args = p.parse_args(argv)
    rng = random.Random(args.seed)
    summary: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="faults_") as tmp:
        work = Path(tmp)
        pairs = write_pairs(work / "pairs")
        done = run(command(pairs, work, "oracle"))
        if done.returncode != 0:
            raise SystemExit(f"fault_campaign.py: the uninterrupted run failed:\n{done.stderr[-2000:]}")
        oracle = training_of(work / "oracle" / "latest.pt")
        for fault in args.faults.split(","):
            for i in range(trials_for(fault, args.trials)):
                started = time.monotonic()
                result = FAULTS[fault](i, rng, pairs, work, oracle)
                result["seconds"] = round(time.monotonic() - started, 1)
                emit([result], args.out)
                summary.setdefault(fault, []).append(result)
    rows = [{"fault": fault, "trials": len(results), "runs_lost": sum(r["lost"] for r in results),
             "resumed_bit_exact": (f"{sum(bool(r['bit_exact']) for r in results)}/{len(results)}"
                                   if any(r["bit_exact"] is not None for r in results) else "n/a")}
            for fault, results in summary.items()]
    emit([{"bench": "fault_campaign", "table": rows, "cpu": "see README", "load_average": load_average()}], args.out)
    print("\n| fault | trials | runs lost | resumed bit-exact |\n|---|---|---|---|")
    for row in rows:
        print(f"| {row['fault']} | {row['trials']} | {row['runs_lost']} | {row['resumed_bit_exact']} |")
    return 1 if any(row["runs_lost"] for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
