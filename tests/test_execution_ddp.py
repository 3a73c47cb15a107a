"""``--amp auto``'s real measuring path, unpinned (the suite pins it in tests/conftest.py), at
driver level with two processes, and its broadcast: every rank trains in rank 0's choice even
where its own clock would have chosen otherwise."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from engine import amp_auto
from engine.distributed import single_process_runtime
from engine.execution import settle_execution
from models import create_model
from options.parse import parse_options
from tests.distributed_helpers import run_distributed
from tests.test_ddp import REPO, write_pairs

TINY = ["--dataroot", "unused", "--gpu_ids", "-1", "--netG", "resnet_6blocks", "--ngf", "4", "--ndf", "4",
        "--crop_size", "32", "--load_size", "32", "--display_id", "0", "--batch_size", "2"]


def test_two_processes_train_in_what_the_real_probe_measured(tmp_path: Path) -> None:
    pairs = write_pairs(tmp_path / "pairs", n=4, side=32)
    env = {k: v for k, v in os.environ.items() if k != amp_auto.PIN_ENV}   # measure, as users run it
    env["PIX2PIX_CACHE_DIR"] = str(tmp_path / "cache")
    done = subprocess.run([sys.executable, "train.py", *TINY[2:], "--dataroot", str(pairs), "--checkpoints_dir",
                           str(tmp_path / "ck"), "--name", "ddp", "--nproc", "2", "--preprocess", "none",
                           "--num_threads", "0", "--no_html", "--n_epochs", "1", "--n_epochs_decay", "0"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    entries = list(json.loads((tmp_path / "cache" / amp_auto.CACHE_FILE).read_text()).values())
    assert len(entries) == 1 and entries[0]["choice"] in amp_auto.CANDIDATES
    assert entries[0]["median_s"]["none"] > 0 and entries[0]["median_s"]["bf16"] > 0   # timed for real
    for name in ("latest.pt", "latest_net_G.pt"):
        saved = torch.load(tmp_path / "ck" / "ddp" / name, weights_only=True)
        assert saved["execution"]["amp"] == entries[0]["choice"]
        assert saved["execution"]["amp_source"] == "--amp auto"
    assert f"--amp auto: {entries[0]['choice']} (probe step fp32" in done.stdout


def decide_on_rank(rank: int, world_size: int, cache_root: str) -> dict:
    """One rank of a 2-process job settling its precision: each rank's probe clock finds another
    precision faster (rank 0: bf16, rank 1: fp32) and each has its own empty cache, so a rank
    that measured for itself would disagree."""
    os.environ[amp_auto.PIN_ENV] = "measure"
    os.environ["PIX2PIX_CACHE_DIR"] = str(Path(cache_root) / f"rank{rank}")
    faster = "bf16" if rank == 0 else "none"
    clock, calls = [0.0], []

    def fake_probe_step(model, batch, amp, device):
        def step() -> None:
            calls.append(amp)
            clock[0] += 0.5 if amp == faster else 1.0
        return step
    amp_auto.probe_step = fake_probe_step
    amp_auto.native_bf16 = lambda device: True
    original = amp_auto.choose_auto_amp
    amp_auto.choose_auto_amp = lambda *a, **k: original(*a, **k, timer=lambda: clock[0])
    opt = parse_options(TINY, is_train=True)
    model = create_model(opt, single_process_runtime([]))
    execution = settle_execution(opt, model, torch.device("cpu"), recorded=None)
    return {"execution": execution.as_dict(), "model_amp": model.amp, "probe_steps": len(calls)}


def test_every_rank_trains_in_rank_0s_choice_even_where_its_own_clock_disagrees(tmp_path: Path) -> None:
    rank0, rank1 = run_distributed(decide_on_rank, 2, str(tmp_path), timeout_s=120)
    assert rank0["probe_steps"] == 2 * (1 + amp_auto.ROUNDS) and rank1["probe_steps"] == 0
    assert rank0["model_amp"] == rank1["model_amp"] == "bf16"
    assert rank0["execution"]["amp"] == rank1["execution"]["amp"] == "bf16"
    assert (tmp_path / "rank0" / amp_auto.CACHE_FILE).is_file()
    assert not (tmp_path / "rank1").exists()
