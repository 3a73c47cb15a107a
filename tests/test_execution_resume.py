"""A run's precision and OpenMP waiting are decided once, recorded in every checkpoint, and reused
by a resume (engine/execution.py): a run stopped on a quiet machine and resumed on a busy one,
where a fresh decision would pick the other precision and the other waiting, ends bit-identical
to the run that was never stopped. The load is simulated (tests/load_sim_runner.py): the
waiting rule reads a given load, and the ``--amp auto`` probe a clock that finds the given
precision faster; the rule, the probe's decision and the record are the real ones.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import test as test_script
import train as train_script
from engine.amp_auto import CACHE_FILE, PIN_ENV
from tests.test_ddp import REPO, write_pairs
from tests.test_faults import assert_same_training, weights
from util.omp_env import USER_KEYS

QUIET, BUSY = 0, 8   # CPUs' worth of other work: 8 oversubscribes any CPU count this suite runs on
RECORDED_QUIET = {"amp": "bf16", "amp_source": "--amp auto", "omp_wait": "default"}


def argv(pairs: Path, ckpt: Path, name: str, *extra: str) -> list[str]:
    # --amp is left at its default, auto: what is decided there is what this file is about.
    return ["--dataroot", str(pairs), "--checkpoints_dir", str(ckpt), "--name", name, "--gpu_ids", "-1",
            "--netG", "resnet_6blocks", "--ngf", "4", "--ndf", "4", "--load_size", "32", "--crop_size", "32",
            "--preprocess", "none", "--num_threads", "0", "--display_id", "0", "--no_html", "--print_freq", "1",
            "--batch_size", "2", "--n_epochs", "2", "--n_epochs_decay", "0", *extra]   # 4 steps


def under_load(busy: int, faster: str, cache: Path, args: list[str]) -> str:
    """Run train.py as a new process (its waiting is chosen as it starts) under the simulated
    load; returns what it logged. Nothing of this test process's own choices is inherited."""
    env = {k: v for k, v in os.environ.items() if k not in (*USER_KEYS, PIN_ENV, "PIX2PIX_OMP_POLICY")}
    env["PIX2PIX_CACHE_DIR"] = str(cache)
    done = subprocess.run([sys.executable, "-m", "tests.load_sim_runner", str(busy), faster, "--", *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout + done.stderr


def recorded(path: Path) -> dict:
    return torch.load(path, weights_only=True)["execution"]


@pytest.fixture(scope="module")
def pairs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_pairs(tmp_path_factory.mktemp("exec_pairs"), n=4, side=32)


@pytest.fixture(scope="module")
def quiet_run(pairs: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The oracle: 4 steps on a quiet machine where bf16 is measured faster, never stopped."""
    root = tmp_path_factory.mktemp("quiet")
    under_load(QUIET, "bf16", root / "cache", argv(pairs, root, "full"))
    assert recorded(root / "full" / "latest.pt") == RECORDED_QUIET
    return weights(root / "full" / "latest.pt")


def test_the_simulated_busy_machine_would_decide_otherwise(pairs: Path, tmp_path: Path) -> None:
    """The control for the resume below: a fresh run under the busy load picks fp32 and PASSIVE."""
    under_load(BUSY, "none", tmp_path / "cache", argv(pairs, tmp_path, "busy", "--max_steps", "1"))
    expected = {"amp": "none", "amp_source": "--amp auto", "omp_wait": "PASSIVE"}
    assert recorded(tmp_path / "busy" / "latest.pt") == expected
    assert recorded(tmp_path / "busy" / "latest_net_G.pt") == expected


def test_a_resume_on_a_busier_machine_reuses_the_recorded_choice_and_ends_bit_identical(
        pairs: Path, tmp_path: Path, quiet_run: dict, capsys: pytest.CaptureFixture[str]) -> None:
    under_load(QUIET, "bf16", tmp_path / "cache1", argv(pairs, tmp_path, "cut", "--max_steps", "2"))
    assert recorded(tmp_path / "cut" / "latest.pt") == RECORDED_QUIET
    shutil.copytree(tmp_path / "cut", tmp_path / "typed")   # for the override below
    # Another machine's load and an empty probe cache: a fresh decision would be fp32, PASSIVE.
    log = under_load(BUSY, "none", tmp_path / "cache2", argv(pairs, tmp_path, "cut", "--continue_train"))
    assert_same_training(weights(tmp_path / "cut" / "latest.pt"), quiet_run)
    assert not (tmp_path / "cache2" / CACHE_FILE).exists()   # no probe ran
    assert "precision bf16, as the checkpoint records (decided by --amp auto); not decided again" in log
    assert "OpenMP wait PASSIVE here, default in the checkpoint" in log
    # The record names the precision kept and the waiting of the process that wrote the file.
    resumed = {"amp": "bf16", "amp_source": "--amp auto", "omp_wait": "PASSIVE"}
    assert recorded(tmp_path / "cut" / "latest.pt") == resumed
    assert recorded(tmp_path / "cut" / "latest_net_G.pt") == resumed
    options = (tmp_path / "cut" / "train_opt.txt").read_text()
    assert "amp: auto -> bf16 (decided by --amp auto)\n" in options
    assert "omp_wait: PASSIVE (PIX2PIX_OMP_POLICY=auto)\n" in options

    # test.py says how the generator it runs was trained, in one line.
    capsys.readouterr()
    assert test_script.main(["--dataroot", str(pairs), "--checkpoints_dir", str(tmp_path), "--name", "cut",
                             "--gpu_ids", "-1", "--results_dir", str(tmp_path / "results"), "--load_size", "32",
                             "--crop_size", "32", "--preprocess", "none", "--num_threads", "0"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "trained in bf16 (decided by --amp auto), OpenMP wait PASSIVE" in lines

    # A precision typed on the resume wins, says that exactness is lost, and it is.
    assert train_script.main([*argv(pairs, tmp_path, "typed", "--continue_train"), "--amp", "none"]) == 0
    warnings = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("--amp none typed")]
    assert warnings == ["--amp none typed on a resume of a run trained in bf16: it overrides the recorded "
                        "precision, and the run is no longer bit-identical to an uninterrupted one"]
    assert recorded(tmp_path / "typed" / "latest.pt")["amp"] == "none"
    typed = weights(tmp_path / "typed" / "latest.pt")
    assert typed["state"] == quiet_run["state"]
    assert any(not torch.equal(value, quiet_run["nets"]["G"][key]) for key, value in typed["nets"]["G"].items())


def test_the_waiting_policy_does_not_change_the_weights(pairs: Path, tmp_path: Path, quiet_run: dict) -> None:
    """Why the policy is recorded but not carried over: the whole run under PASSIVE (threads
    sleep) ends bit-identical to the one under the default (threads spin a while first)."""
    under_load(BUSY, "bf16", tmp_path / "cache", argv(pairs, tmp_path, "passive"))
    assert recorded(tmp_path / "passive" / "latest.pt") == {**RECORDED_QUIET, "omp_wait": "PASSIVE"}
    assert_same_training(weights(tmp_path / "passive" / "latest.pt"), quiet_run)
