"""Synced batch norm: across 2 gloo processes on CPU it equals local BN on the whole batch."""
from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.distributed as dist
from torch import nn

from models.batchnorm import BatchNorm2d
from models.sync_batchnorm import SyncBatchNorm2d, convert_to_sync_batchnorm
from tests.distributed_helpers import DistributedRunError, run_distributed

CHANNELS, SIDE, STEPS = 3, 4, 2

# name -> (per-rank batch sizes, channel mean offset, momentum)
CASES: dict[str, tuple[tuple[int, int], float, float | None]] = {
    "even": ((4, 4), 0.0, 0.1),
    "uneven_3_5": ((3, 5), 0.0, 0.1),
    "offset_1e3": ((3, 5), 1e3, 0.1),
    "cumulative_5_2": ((5, 2), 0.0, None),
    "empty_rank": ((0, 4), 0.0, 0.1),
}


def make_data(case: str, step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The global batch of one step and the weights of a loss sum(y * g)."""
    sizes, offset, _ = CASES[case]
    gen = torch.Generator().manual_seed(1000 * step + len(case))
    n = sum(sizes)
    channel_means = offset + torch.tensor([0.0, 2.0, -3.0]).view(1, CHANNELS, 1, 1)
    x = torch.randn(n, CHANNELS, SIDE, SIDE, generator=gen) * torch.tensor([1.0, 0.5, 3.0]).view(1, -1, 1, 1)
    g = torch.randn(n, CHANNELS, SIDE, SIDE, generator=gen)
    return x + channel_means, g


def make_layer(cls: type[BatchNorm2d], momentum: float | None) -> BatchNorm2d:
    layer = cls(CHANNELS, momentum=momentum)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([1.5, -0.5, 0.8]))
        layer.bias.copy_(torch.tensor([0.1, 0.2, -0.3]))
    return layer


def train_steps(layer: BatchNorm2d, case: str, rows: slice, dtype: torch.dtype = torch.float32) -> dict[str, Any]:
    """STEPS forward/backward passes on this process's rows of each global batch."""
    record: dict[str, Any] = {"y": [], "x_grad": [], "w_grad": [], "b_grad": []}
    for step in range(STEPS):
        x, g = (t.to(dtype) for t in make_data(case, step))
        x = x[rows].clone().requires_grad_()
        layer.zero_grad()
        y = layer(x)
        (y * g[rows]).sum().backward()
        record["y"].append(y.detach())
        record["x_grad"].append(x.grad)
        record["w_grad"].append(layer.weight.grad.clone())
        record["b_grad"].append(layer.bias.grad.clone())
    record["running_mean"] = layer.running_mean.clone()
    record["running_var"] = layer.running_var.clone()
    record["num_batches_tracked"] = int(layer.num_batches_tracked)
    return record


def _rank_worker(rank: int, world_size: int) -> dict[str, Any]:
    assert dist.get_world_size() == world_size == 2
    results = {}
    for case, (sizes, _, momentum) in CASES.items():
        start = sum(sizes[:rank])
        results[case] = train_steps(make_layer(SyncBatchNorm2d, momentum), case, slice(start, start + sizes[rank]))
    # In eval mode the layer must not communicate: a lone rank's forward may not block.
    layer = make_layer(SyncBatchNorm2d, 0.1).eval()
    if rank == 0:
        layer(torch.randn(2, CHANNELS, SIDE, SIDE))
    dist.barrier()
    return results


@pytest.fixture(scope="module")
def rank_results() -> list[dict[str, Any]]:
    return run_distributed(_rank_worker, 2, timeout_s=60)


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.double() - b.double()).abs().max().item() if a.numel() else 0.0


def tolerance(offset: float) -> float:
    """How close float32 can come to the float64 answer: x itself is held to half an ulp of
    its channel mean, which, over the smallest channel std (0.5), bounds y's error."""
    return 1e-5 + 2 * torch.finfo(torch.float32).eps * offset / 0.5


@pytest.mark.parametrize("case", list(CASES))
def test_synced_bn_equals_local_bn_on_the_concatenated_batch(rank_results: list[dict[str, Any]], case: str) -> None:
    sizes, offset, momentum = CASES[case]
    # The oracle: local batch norm on the whole batch in float64 (the same float32 inputs).
    reference = train_steps(make_layer(BatchNorm2d, momentum).double(), case, slice(0, sum(sizes)), torch.float64)
    ranks = [r[case] for r in rank_results]
    for step in range(STEPS):
        y = torch.cat([r["y"][step] for r in ranks])
        x_grad = torch.cat([r["x_grad"][step] for r in ranks])
        assert max_diff(y, reference["y"][step]) < tolerance(offset)
        assert max_diff(x_grad, reference["x_grad"][step]) < tolerance(offset)
        # Parameter gradients are per-process sums (DDP reduces them like any other parameter's).
        assert max_diff(sum(r["w_grad"][step] for r in ranks), reference["w_grad"][step]) < 1e-4 + tolerance(offset)
        assert max_diff(sum(r["b_grad"][step] for r in ranks), reference["b_grad"][step]) < 1e-4
    for key in ("running_mean", "running_var"):
        assert torch.equal(ranks[0][key], ranks[1][key]), f"{key} differs between ranks"
        assert torch.allclose(ranks[0][key], reference[key].float(), rtol=1e-6, atol=1e-5)
    assert ranks[0]["num_batches_tracked"] == ranks[1]["num_batches_tracked"] == STEPS


def test_without_a_process_group_it_is_exactly_the_local_bn() -> None:
    assert not dist.is_initialized()
    synced = train_steps(make_layer(SyncBatchNorm2d, 0.1), "offset_1e3", slice(0, 8))
    local = train_steps(make_layer(BatchNorm2d, 0.1), "offset_1e3", slice(0, 8))
    for key, value in local.items():
        if isinstance(value, list):
            assert all(torch.equal(a, b) for a, b in zip(synced[key], value)), key
        elif isinstance(value, torch.Tensor):
            assert torch.equal(synced[key], value), key
        else:
            assert synced[key] == value, key


def test_convert_replaces_every_batch_norm_and_keeps_its_state() -> None:
    net = nn.Sequential(nn.Conv2d(3, 4, 1), BatchNorm2d(4, eval_mode="batch"), nn.Sequential(nn.BatchNorm2d(4)))
    with torch.no_grad():
        net[1].running_mean.fill_(0.5)
        net[2][0].weight.fill_(2.0)
    net.eval()
    converted = convert_to_sync_batchnorm(net)
    assert isinstance(converted[1], SyncBatchNorm2d) and isinstance(converted[2][0], SyncBatchNorm2d)
    assert converted[1].eval_mode == "batch" and not converted[1].training
    assert torch.equal(converted[1].running_mean, torch.full((4,), 0.5))
    assert torch.equal(converted[2][0].weight, torch.full((4,), 2.0))


def _rank_1_fails(rank: int, world_size: int) -> None:
    if rank == 1:
        raise ValueError("rank 1 broke")
    dist.all_reduce(torch.ones(1))  # rank 0 would wait here for ever without the deadline


def test_a_failing_rank_fails_the_run_instead_of_hanging_it() -> None:
    with pytest.raises(DistributedRunError, match="rank 1 broke"):
        run_distributed(_rank_1_fails, 2, timeout_s=20)


def _probe_on_rank_0_alone(rank: int, world_size: int) -> dict[str, Any]:
    """The --amp auto probe's situation: rank 0 trains a trial copy of a --norm syncbatch model
    while rank 1 waits for it elsewhere (here, a barrier)."""
    from engine.amp_auto import probe_step
    from engine.distributed import Runtime
    from tests.test_pix2pix_model import one_pair, tiny_model

    model = tiny_model("--norm", "syncbatch")
    synced = sum(isinstance(m, SyncBatchNorm2d) for m in model.net_G.modules())
    if rank == 0:
        twin = model.trial_copy("none")
        step = probe_step(model, one_pair(), "none", torch.device("cpu"))
        step()
        left_synced = sum(isinstance(m, SyncBatchNorm2d) for net in twin.nets.values() for m in net.modules())
    else:
        left_synced = None
    dist.barrier()
    return {"synced": synced, "twin_synced": left_synced,
            "model_still_synced": sum(isinstance(m, SyncBatchNorm2d) for m in model.net_G.modules())}


def test_a_trial_copy_of_a_synced_model_trains_on_one_rank_alone() -> None:
    # A synced layer in the copy would wait for rank 1's statistics, which never come: a hang
    # until the process group's timeout (the --amp auto probe, rank 0 only, before the fix).
    results = run_distributed(_probe_on_rank_0_alone, 2, timeout_s=30)
    assert results[0]["synced"] > 0 and results[0]["twin_synced"] == 0
    assert all(r["model_still_synced"] == r["synced"] for r in results)
