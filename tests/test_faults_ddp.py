"""Stops, kills and restarts under DDP (issue 12): 2 gloo processes on the CPU.

The oracle is always a 2-process run of the same command that nobody interrupted: resumed
runs must end with the same tensors, bit for bit.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import train as train_script
import training.loop as training_loop
from engine.distributed import Runtime
from engine.stop import TrainingStopped
from options.parse import parse_options
from tests.conftest import free_loopback_port
from tests.distributed_helpers import run_distributed
from tests.shard_helpers import make_shard_set
from tests.test_ddp import REPO, train_args, write_pairs
from tests.test_faults import assert_same_training, weights

# 8 images, 2 ranks x batch 2: 2 steps an epoch, 4 epochs, 'latest' after every step.
STEPS = 8


def ddp_args(pairs: Path, ckpt: Path, name: str, *extra: str) -> list[str]:
    return train_args(pairs, ckpt, name, "--batch_size", "2", "--n_epochs", "4", "--save_latest_freq", "4",
                      "--save_epoch_freq", "100", *extra)


@pytest.fixture(scope="module")
def pairs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_pairs(tmp_path_factory.mktemp("ddp_fault_pairs"))


def _stop_one_rank_then_resume(rank: int, world_size: int, pairs: str, ckpt: str) -> dict:
    runtime = Runtime(device=torch.device("cpu"), rank=rank, world_size=world_size, local_rank=rank)
    root, out = Path(pairs), Path(ckpt)
    train_script.train(parse_options(ddp_args(root, out, "full"), is_train=True), runtime)

    # SIGTERM reaches rank 1 only, after its step 3: both ranks must stop after that step.
    real = training_loop.report_and_save

    def report_then_signal(run, model, state, *rest) -> None:
        real(run, model, state, *rest)
        if rank == 1 and state.step == 3:
            os.kill(os.getpid(), signal.SIGTERM)

    training_loop.report_and_save = report_then_signal
    stopped = None
    try:
        train_script.train(parse_options(ddp_args(root, out, "cut", "--save_latest_freq", "1000"), is_train=True),
                           runtime)
    except TrainingStopped as stop:
        stopped = (stop.signum, str(stop))
    finally:
        training_loop.report_and_save = real
    at_stop = torch.load(out / "cut" / "latest.pt", weights_only=True)["state"]["step"] if rank == 0 else None
    train_script.train(parse_options(ddp_args(root, out, "cut", "--continue_train"), is_train=True), runtime)
    return {"stopped": stopped, "step_at_stop": at_stop}


def test_a_signal_to_one_rank_stops_both_after_the_same_step_and_resumes_bit_exact(pairs: Path,
                                                                                   tmp_path: Path) -> None:
    results = run_distributed(_stop_one_rank_then_resume, 2, str(pairs), str(tmp_path), timeout_s=400)
    for result in results:
        assert result["stopped"] is not None and result["stopped"][0] == signal.SIGTERM
        assert "after step 3" in result["stopped"][1]
    assert results[0]["step_at_stop"] == 3
    assert_same_training(weights(tmp_path / "cut" / "latest.pt"), weights(tmp_path / "full" / "latest.pt"))


TORCHRUN = Path(sys.executable).with_name("torchrun")
ENV = {**os.environ, "GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def torchrun(*launcher: str) -> list[str]:
    return [str(TORCHRUN), *launcher, str(REPO / "train.py")]


@pytest.fixture(scope="module")
def torchrun_oracle(pairs: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    ckpt = tmp_path_factory.mktemp("torchrun_oracle")
    done = subprocess.run([*torchrun("--standalone", "--nproc_per_node=2"), *ddp_args(pairs, ckpt, "oracle")],
                          capture_output=True, text=True, env=ENV, cwd=ckpt, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    return weights(ckpt / "oracle" / "latest.pt")


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return found


def test_torchrun_restarts_a_killed_worker_and_ends_like_an_uninterrupted_run(pairs: Path, tmp_path: Path,
                                                                              torchrun_oracle: dict) -> None:
    command = [*torchrun("--standalone", "--nproc_per_node=2", "--max_restarts=1"),
               *ddp_args(pairs, tmp_path, "restarted", "--continue_train", "auto")]
    job = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV,
                           cwd=tmp_path)
    assert job.stdout is not None
    lines, killed = [], None
    for line in job.stdout:
        lines.append(line)
        if killed is None and "(epoch 2, step 3," in line:  # mid-epoch: 1 of epoch 2's 2 steps done
            workers = children(job.pid)
            assert len(workers) == 2, workers
            killed = workers[-1]
            os.kill(killed, signal.SIGKILL)
    assert job.wait(400) == 0, "".join(lines[-60:])
    text = "".join(lines)
    assert killed is not None
    assert "resumed from latest at epoch" in text  # the restarted workers picked 'latest' up
    assert "all 2 processes hold identical weights" in text
    assert not list((tmp_path / "restarted").glob(".*tmp"))
    assert_same_training(weights(tmp_path / "restarted" / "latest.pt"), torchrun_oracle)


@pytest.mark.parametrize("source", ["folder", "shards"])
def test_readme_multi_node_command_on_loopback(source: str, pairs: Path, tmp_path: Path,
                                               torchrun_oracle: dict) -> None:
    """The README's two-machine command, both 'machines' on this one: two torchrun agents,
    --nnodes 2, a c10d rendezvous on 127.0.0.1; reading the folder, or shards made from it."""
    endpoint = f"127.0.0.1:{free_loopback_port()}"
    data = []
    if source == "shards":
        data = ["--dataroot", str(make_shard_set(pairs, tmp_path / "shards")), "--dataset_mode", "shards",
                "--shard_cache", str(tmp_path / "shard_cache")]
    command = [*torchrun("--nnodes=2", "--nproc_per_node=1", "--rdzv_id=facades", "--rdzv_backend=c10d",
                         f"--rdzv_endpoint={endpoint}"), *ddp_args(pairs, tmp_path, "two_nodes", *data)]
    agents = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV,
                               cwd=tmp_path) for _ in range(2)]
    outputs = []
    try:
        for agent in agents:
            out, _ = agent.communicate(timeout=400)
            outputs.append(out)
            assert agent.returncode == 0, out[-3000:]
    finally:
        for agent in agents:
            if agent.poll() is None:
                agent.kill()
    text = "".join(outputs)
    assert "2 process(es) x batch 2" in text
    assert "all 2 processes hold identical weights" in text  # checked on every rank, by digest
    # ... and they are the weights that one machine with 2 processes trains.
    assert_same_training(weights(tmp_path / "two_nodes" / "latest.pt"), torchrun_oracle)


def test_nproc_launcher_passes_sigterm_on_once_and_exits_143(pairs: Path, tmp_path: Path) -> None:
    command = [sys.executable, str(REPO / "train.py"), *ddp_args(pairs, tmp_path, "launched", "--nproc", "2")]
    job = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV, cwd=tmp_path)
    assert job.stdout is not None
    for line in job.stdout:
        if "(epoch 1, step 2," in line:
            job.send_signal(signal.SIGTERM)  # to the launcher only, as a scheduler would
            break
    job.stdout.read()
    err = job.stderr.read() if job.stderr else ""
    assert job.wait(300) == 143, err[-3000:]
    assert "Traceback" not in err and "stopped at once" not in err  # one signal each, not two
    assert "train.py: stopped by SIGTERM after step" in err
    saved = torch.load(tmp_path / "launched" / "latest.pt", weights_only=True)["state"]
    assert 2 <= saved["step"] < STEPS
