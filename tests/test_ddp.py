"""Training under DDP on CPU: 2 gloo processes, tiny networks, 32 px images.

One distributed job trains several configurations (spawning processes is the slow part), and
the tests below check what a user relies on: the ranks stay in step, synced BN over 2 x b
equals one process over 2b, checkpoints cross between 1- and 2-process runs, both launchers
(``--nproc`` and torchrun) work, and a failing or stalled rank ends the job.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import test as test_script
import train as train_script
from data.loader import create_dataloader
from models import create_model
from options.parse import parse_options
from engine.distributed import Runtime, barrier, distributed_runtime, is_peer_failure, mean_across_ranks, unwrap
from tests.distributed_helpers import run_distributed
from engine.launch import LaunchError, launch

REPO = Path(__file__).resolve().parent.parent
SIDE, N_IMAGES = 32, 8


def write_pairs(root: Path, n: int = N_IMAGES, side: int = SIDE) -> Path:
    """Aligned pairs (A left, B right) of smooth random pictures in root/train and root/test."""
    rng = np.random.default_rng(7)
    for split in ("train", "test"):
        (root / split).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            coarse = rng.integers(0, 256, size=(4, 8, 3), dtype=np.uint8)
            pair = Image.fromarray(coarse).resize((2 * side, side), Image.BILINEAR)
            pair.save(root / split / f"{i:03d}.png")
    return root


def train_args(root: Path, ckpt: Path, name: str, *extra: str) -> list[str]:
    return ["--dataroot", str(root), "--checkpoints_dir", str(ckpt), "--name", name, "--gpu_ids", "-1",
            "--netG", "resnet_6blocks", "--ngf", "4", "--ndf", "4", "--load_size", str(SIDE),
            "--crop_size", str(SIDE), "--preprocess", "none", "--num_threads", "0", "--display_id", "0",
            "--no_html", "--print_freq", "1", "--n_epochs", "2", "--n_epochs_decay", "0",
            # fp32, so that the synced-BN comparison with one process can hold to 1e-5
            "--amp", "none", *extra]


# name -> extra flags; each trains 3 steps of batch 2 per rank.
CONFIGS: dict[str, list[str]] = {
    # plain BN broadcasts its buffers; dropout differs per rank and must not split the weights
    "batch_vanilla_dropout": ["--norm", "batch", "--gan_mode", "vanilla"],
    # the gradient penalty differentiates through the unwrapped D inside the DDP step
    "instance_wgangp": ["--norm", "instance", "--gan_mode", "wgangp", "--no_dropout"],
    "syncbatch": ["--norm", "syncbatch", "--no_dropout", "--serial_batches", "--no_flip"],
}
STEPS, RANK_BATCH = 3, 2


def _weights(model) -> dict[str, dict[str, torch.Tensor]]:
    return {name: {k: v.detach().clone() for k, v in unwrap(net).state_dict().items()}
            for name, net in model.nets.items()}


def _train_configs(rank: int, world_size: int, root: str, ckpt: str) -> dict[str, dict]:
    runtime = Runtime(device=torch.device("cpu"), rank=rank, world_size=world_size, local_rank=rank)
    out = {}
    for name, extra in CONFIGS.items():
        opt = parse_options(train_args(Path(root), Path(ckpt), name, "--batch_size", str(RANK_BATCH),
                                       "--max_steps", str(STEPS), *extra), is_train=True)
        state, model = train_script.train(opt, runtime)
        out[name] = {"weights": _weights(model), "step": state.step}
    out["mean"] = mean_across_ranks({"a": torch.tensor(float(rank)), "b": torch.tensor(10.0 * (rank + 1))}, runtime)
    return out


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_pairs(tmp_path_factory.mktemp("pairs"))


@pytest.fixture(scope="module")
def two_rank_runs(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, dict]]:
    ckpt = tmp_path_factory.mktemp("ddp_ckpt")
    return run_distributed(_train_configs, 2, str(data_root), str(ckpt), timeout_s=120)


@pytest.mark.parametrize("config", CONFIGS)
def test_ranks_hold_bit_identical_weights_after_training(two_rank_runs: list[dict], config: str) -> None:
    rank0, rank1 = (run[config] for run in two_rank_runs)
    assert rank0["step"] == rank1["step"] == STEPS
    for net in ("G", "D"):
        for key, value in rank0["weights"][net].items():
            # Plain BN's running stats are local between broadcasts; parameters never are.
            if config.startswith("batch") and ("running" in key or "num_batches" in key):
                continue
            assert torch.equal(value, rank1["weights"][net][key]), f"{config}: {net}.{key} differs across ranks"


def test_mean_across_ranks_averages_each_loss(two_rank_runs: list[dict]) -> None:
    for run in two_rank_runs:
        assert run["mean"] == {"a": torch.tensor(0.5), "b": torch.tensor(15.0)}


def test_weights_moved_and_ranks_saw_different_data(two_rank_runs: list[dict], data_root: Path,
                                                    tmp_path: Path) -> None:
    # Guards the test above: identical weights must come from averaged gradients, not from
    # both ranks training on the same samples or not training at all.
    opt = parse_options(train_args(data_root, tmp_path, "init", "--norm", "instance", "--gan_mode", "wgangp",
                                   "--no_dropout", "--max_steps", "1"), is_train=True)
    torch.manual_seed(opt.seed)
    initial = _weights(create_model(opt, Runtime(device=torch.device("cpu"))))
    trained = two_rank_runs[0]["instance_wgangp"]["weights"]
    assert any(not torch.equal(initial["G"][k], trained["G"][k]) for k in initial["G"])
    loader_ranks = [create_dataloader(range(N_IMAGES), 2, shuffle=True, num_workers=0, seed=0,
                                                   rank=r, world_size=2).sampler.epoch_indices() for r in (0, 1)]
    assert not set(loader_ranks[0]) & set(loader_ranks[1])


def test_synced_bn_two_ranks_of_b_equal_one_process_of_2b(two_rank_runs: list[dict], data_root: Path,
                                                          tmp_path: Path) -> None:
    # Serial order: rank r takes samples r, r+2, ...; so the 2 ranks' batches {0,2} and {1,3}
    # make up the single process's batch {0,1,2,3}, and so on for every step.
    argv = train_args(data_root, tmp_path, "single", "--batch_size", str(2 * RANK_BATCH), "--max_steps", str(STEPS),
                      *CONFIGS["syncbatch"])
    assert train_script.main(argv) == 0
    single = torch.load(tmp_path / "single" / "latest.pt", weights_only=True)["nets"]
    for rank_run in two_rank_runs:
        ddp = rank_run["syncbatch"]["weights"]
        for net in ("G", "D"):
            for key, value in single[net].items():
                torch.testing.assert_close(ddp[net][key].double(), value.double(), rtol=0, atol=1e-5,
                                           msg=lambda m: f"{net}.{key}: {m}")


def test_nproc_checkpoint_loads_in_test_py_and_resumes_in_one_process(data_root: Path, tmp_path: Path) -> None:
    argv = train_args(data_root, tmp_path, "launched", "--batch_size", "2", "--max_steps", "2")
    assert train_script.main([*argv, "--nproc", "2"]) == 0
    saved = torch.load(tmp_path / "launched" / "latest.pt", weights_only=True)
    assert saved["state"]["step"] == 2 and saved["state"]["samples"] == 2 * 2 * 2
    assert not [k for net in saved["nets"].values() for k in net if k.startswith("module.")]

    results = tmp_path / "results"
    assert test_script.main(["--dataroot", str(data_root), "--checkpoints_dir", str(tmp_path), "--name", "launched",
                             "--gpu_ids", "-1", "--num_threads", "0", "--results_dir", str(results),
                             "--num_test", "2"]) == 0
    assert len(list(results.rglob("*.png"))) >= 2

    # ... and a 1-process run picks the 2-process checkpoint up where it stopped: the two ranks
    # had taken all 8 images of epoch 1 between them, so step 3 is the first of epoch 2.
    assert train_script.main([*argv[:-1], "3", "--continue_train"]) == 0
    resumed = torch.load(tmp_path / "launched" / "latest.pt", weights_only=True)["state"]
    assert (resumed["epoch"], resumed["step"], resumed["epoch_samples"]) == (2, 3, 2)


def test_torchrun_launch_on_gloo(data_root: Path, tmp_path: Path) -> None:
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        pytest.skip("torchrun is not installed next to this Python")
    env = {**os.environ, "GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1"}
    command = [str(torchrun), "--standalone", "--nproc_per_node=2", str(REPO / "train.py"),
               *train_args(data_root, tmp_path, "torchrun", "--batch_size", "2", "--max_steps", "2")]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 process(es) x batch 2" in done.stdout
    state = torch.load(tmp_path / "torchrun" / "latest.pt", weights_only=True)["state"]
    assert state["samples"] == 2 * 2 * 2


def test_a_failing_rank_ends_the_job_with_its_message(data_root: Path, tmp_path: Path,
                                                      capfd: pytest.CaptureFixture[str]) -> None:
    root = write_pairs(tmp_path / "pairs")
    broken = root / "train" / "001.png"  # serial order: only rank 1 reads it, at its first step
    broken.write_bytes(broken.read_bytes()[:200])  # the header still reads, the pixels do not
    argv = train_args(root, tmp_path, "broken", "--serial_batches", "--max_steps", "4", "--nproc", "2")
    assert train_script.main(argv) == 1
    err = capfd.readouterr().err
    assert "train.py: error (rank 1):" in err and "001.png" in err
    # Every rank stopped at the same step and rank 0 said why: the launcher adds no line of its own.
    assert [line for line in err.splitlines() if line.startswith("train.py")] == err.strip().splitlines()[-1:]


def _stall_worker(options: dict) -> int:
    with distributed_runtime([], timeout_s=options["timeout_s"]) as runtime:
        if runtime.rank == 1:
            time.sleep(options["stall_s"])  # never joins the collective
            return 0
        try:
            barrier(runtime)
        except RuntimeError as err:
            return 3 if is_peer_failure(err) else 4
    return 0


def test_a_stalled_rank_times_out_instead_of_hanging() -> None:
    with pytest.raises(LaunchError, match="rank 0 exited with status 3"):
        launch(_stall_worker, {"timeout_s": 2.0, "stall_s": 60.0}, 2)


def test_wgangp_with_synced_bn_is_refused_at_parse_time(data_root: Path, tmp_path: Path,
                                                        capfd: pytest.CaptureFixture[str]) -> None:
    argv = train_args(data_root, tmp_path, "gp", "--norm", "syncbatch", "--gan_mode", "wgangp")
    with pytest.raises(SystemExit) as stop:
        train_script.main(argv)
    assert stop.value.code == 2
    assert "--gan_mode wgangp" in capfd.readouterr().err


def test_nproc_must_match_several_gpu_ids() -> None:
    from engine.launch import processes_to_start
    assert processes_to_start(0, []) == 1 and processes_to_start(3, []) == 3 and processes_to_start(0, [0, 1]) == 2
    with pytest.raises(LaunchError, match="--nproc 3 does not match --gpu_ids 0,1"):
        processes_to_start(3, [0, 1])


def test_two_process_resume_with_dropout_is_exact(data_root: Path, tmp_path: Path) -> None:
    """Each rank's RNG streams (dropout differs per rank) travel in the checkpoint."""
    argv = ["--batch_size", "2", "--seed", "3", "--nproc", "2"]
    assert train_script.main(train_args(data_root, tmp_path / "a", "r", *argv, "--max_steps", "4")) == 0
    split = train_args(data_root, tmp_path / "b", "r", *argv)
    assert train_script.main([*split, "--max_steps", "2"]) == 0
    assert train_script.main([*split, "--max_steps", "4", "--continue_train"]) == 0
    a = torch.load(tmp_path / "a" / "r" / "latest.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "r" / "latest.pt", weights_only=True)
    assert a["state"] == b["state"] and b["world_size"] == 2 and len(b["rng_per_rank"]) == 2
    for net in ("G", "D"):
        for key, value in a["nets"][net].items():
            assert torch.equal(value, b["nets"][net][key]), f"{net}.{key}"


def test_a_rank_ends_with_its_status_and_its_output_but_without_finalization() -> None:
    """engine.launch.end_rank: the exit status and everything written so far (print buffers,
    logging handlers) reach the parent; the interpreter's finalization, where gloo ranks now and
    then abort in torch's C++ teardown, does not run (an atexit hook is its witness)."""
    script = ("import atexit, logging, sys\n"
              "from engine.launch import end_rank\n"
              "atexit.register(lambda: print('finalized', flush=True))\n"
              "logging.basicConfig(stream=sys.stderr, level=logging.INFO)\n"
              "logging.getLogger('rank').info('logged line')\n"
              "print('buffered line', end='')\n"   # no newline, no flush: held in the buffer
              "end_rank(3)\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).resolve().parent.parent,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 3
    assert done.stdout == "buffered line"
    assert "logged line" in done.stderr
    assert "finalized" not in done.stdout + done.stderr
