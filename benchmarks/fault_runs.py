"""What every fault-campaign trial shares: the tiny training command, the uninterrupted run it
is compared with, and the checks (same tensors, checkpoints that load, a one-line error)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from benchmarks.common import ROOT

TRAIN = ROOT / "train.py"
STEPS = 12
# PYTHONPATH: the wrapped runs (python -c) import train and the project from this clone.
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "PIX2PIX_AMP_AUTO": "native",
       "PYTHONPATH": str(ROOT)}
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
