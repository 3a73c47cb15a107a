"""--niter_fix_global under DDP (gloo, 2 processes): G is wrapped again when what trains changes.

The gradients are checked against their definition: after each backward every rank must hold
the mean of the gradients that the two ranks' inputs give in one process, G1's none in the
fixed epoch. (Whole runs against one process with the global batch are no oracle here: Adam's
first steps move each weight by about the learning rate in the direction of its gradient's
sign, so a component whose gradient is at rounding level lands 2 lr apart, and these small
GANs amplify such a difference within a few steps.) Then train.py itself: G1 unchanged through
the fixed epoch and trained after it, the ranks identical at the end (train.py checks), and a
run stopped inside the fixed epoch and resumed equal to the uninterrupted one."""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import train as train_driver
from engine.distributed import Runtime, ddp_wrapper, unwrap
from models import create_model
from options.parse import parse_options
from tests.distributed_helpers import run_distributed
from tests.test_highres_training import HEIGHT, WIDTH, args, initial_generator, load, split
from training.loop import broadcast_buffers

SCHEDULE = ["--niter_fix_global", "1", "--n_epochs", "1", "--n_epochs_decay", "1", "--save_epoch_freq", "1",
            "--norm", "syncbatch", "--seed", "5"]


@pytest.fixture(scope="module")
def four_pairs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four A|B pairs of 128x64: two steps of a global batch of 2 per epoch."""
    root = tmp_path_factory.mktemp("wide4")
    rng = np.random.default_rng(1)
    (root / "train").mkdir()
    for i in range(4):
        a = rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
        Image.fromarray(np.concatenate([a, 255 - a], axis=1)).save(root / "train" / f"{i}.png")
    return root


def two_processes(data: Path, ck: Path, *extra: str) -> list[str]:
    return args(data, ck, *SCHEDULE, "--nproc", "2", "--batch_size", "1", "--dist_timeout", "120", *extra)


@pytest.fixture(scope="module")
def runs(four_pairs: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same two epochs two ways: two processes; two processes stopped after the first step
    (inside the fixed epoch) and resumed."""
    out = {}
    ddp = tmp_path_factory.mktemp("ddp")
    assert train_driver.main(two_processes(four_pairs, ddp)) == 0
    out["ddp"] = ddp / "hd"
    resumed = tmp_path_factory.mktemp("resumed")
    assert train_driver.main(two_processes(four_pairs, resumed, "--max_steps", "1")) == 0
    assert train_driver.main(two_processes(four_pairs, resumed, "--continue_train")) == 0
    out["resumed"] = resumed / "hd"
    return out


def test_global_generator_fixed_then_trained_with_two_processes(runs: dict[str, Path], four_pairs: Path,
                                                                 tmp_path: Path) -> None:
    start_g1, start_g2 = split(initial_generator(four_pairs, tmp_path, *SCHEDULE))
    after_1_g1, after_1_g2 = split(load(runs["ddp"] / "1.pt")["nets"]["G"])
    after_2_g1, _ = split(load(runs["ddp"] / "2.pt")["nets"]["G"])
    parameters = [k for k in start_g1 if k.endswith(("weight", "bias"))]   # batch norm's statistics move
    assert all(torch.equal(start_g1[k], after_1_g1[k]) for k in parameters)     # epoch 1: G1 fixed
    assert any(not torch.equal(start_g2[k], after_1_g2[k]) for k in start_g2)    # ... while G2 trained
    assert all(not torch.equal(after_1_g1[k], after_2_g1[k]) for k in parameters)  # epoch 2: all of G trains


def test_resume_inside_the_fixed_epoch_under_ddp_is_exact(runs: dict[str, Path]) -> None:
    whole, resumed = load(runs["ddp"] / "latest.pt"), load(runs["resumed"] / "latest.pt")
    assert whole["state"] == resumed["state"]
    for net in ("G", "D"):
        for key, value in whole["nets"][net].items():
            assert torch.equal(value, resumed["nets"][net][key]), f"{net}.{key}"


def _gradients_by_epoch(rank: int, world_size: int, argv: list[str]) -> dict[int, list[dict[str, torch.Tensor]]]:
    """Per epoch, two backward passes of G through its DDP wrapper on this rank's input; each
    rank's gradients after each, and every rank's input's own gradients from a plain copy."""
    runtime = Runtime(device=torch.device("cpu"), rank=rank, world_size=world_size, local_rank=rank)
    opt = parse_options(argv, is_train=True)
    torch.manual_seed(opt.seed)
    model = create_model(opt, runtime)
    model.wrap_networks(ddp_wrapper(runtime, broadcast_buffers))
    inputs = [torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(10 + r)) for r in range(world_size)]
    out: dict[int, list[dict[str, torch.Tensor]]] = {}
    for epoch in (1, 2):
        model.begin_epoch(epoch)
        out[epoch] = []
        for _ in range(2):   # a reducer left waiting shows at the second forward
            plain = copy.deepcopy(unwrap(model.net_G))
            own = []
            for x in inputs:
                plain.zero_grad(set_to_none=True)
                plain(x).square().mean().backward()
                own.append({k: p.grad.clone() for k, p in plain.named_parameters() if p.grad is not None})
            model.net_G.zero_grad(set_to_none=True)
            model.net_G(inputs[rank]).square().mean().backward()
            ddp = {k: p.grad.clone() for k, p in unwrap(model.net_G).named_parameters() if p.grad is not None}
            out[epoch].append({"ddp": ddp, "own": own})
    return out


def test_ddp_gradients_are_the_ranks_mean_with_g1_fixed_then_trained(tmp_path: Path) -> None:
    argv = ["--dataroot", str(tmp_path), "--checkpoints_dir", str(tmp_path), "--gpu_ids", "-1", "--netG", "local",
            "--ngf", "4", "--n_blocks_global", "1", "--n_blocks_local", "1", "--n_downsample_global", "1",
            "--norm", "instance", "--no_dropout", "--crop_size", "32", "--load_size", "32",
            "--niter_fix_global", "1", "--n_epochs", "1", "--n_epochs_decay", "1"]
    runs = run_distributed(_gradients_by_epoch, 2, argv, timeout_s=120)
    for rank, run in enumerate(runs):
        for epoch, passes in run.items():
            for result in passes:
                ddp, own = result["ddp"], result["own"]
                assert set(own[0]) == set(own[1]) == set(ddp)
                fixed = [k for k in ddp if k.startswith("global_generator.")]
                assert (not fixed) if epoch == 1 else len(fixed) > 0, f"epoch {epoch}: G1 trains? {fixed[:2]}"
                for key, grad in ddp.items():
                    mean = (own[0][key] + own[1][key]) / 2
                    torch.testing.assert_close(grad, mean, rtol=1e-5, atol=1e-7,
                                               msg=lambda m: f"rank {rank}, epoch {epoch}, {key}: {m}")
                # Guards the mean: the ranks' inputs give different gradients.
                assert not all(torch.allclose(own[0][k], own[1][k]) for k in ddp)
