"""--lr_policy and --epoch_count: the learning rate of every epoch against hand computations.

The scheduler steps once at the end of each epoch, so the rate during epoch e is the base rate
times the policy's factor for e; a run that starts at --epoch_count e starts at that factor."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import train as train_driver
from models.schedulers import LR_POLICIES, EpochScheduler
from tests.pipeline_helpers import make_aligned_dataset, tiny_args


def rates(policy: str, n_epochs: int, n_epochs_decay: int, epoch_count: int = 1, decay_iters: int = 50,
          metrics: list[float] | None = None) -> list[float]:
    """The rate in force during each epoch from epoch_count to the last (base rate 1)."""
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    scheduler = EpochScheduler(policy, optimizer, n_epochs, n_epochs_decay, epoch_count, decay_iters)
    out = []
    for i, _ in enumerate(range(epoch_count, n_epochs + n_epochs_decay + 1)):
        out.append(scheduler.lr())
        scheduler.step(metrics[i] if metrics else None)
    return out


# n_epochs 4 + n_epochs_decay 4 = 8 epochs.
# linear: 1 for epochs 1-4, then 1 - (e - 4) / 5: 0.8, 0.6, 0.4, 0.2.
# step, every 3 epochs: 1, 1, 1, 0.1, 0.1, 0.1, 0.01, 0.01.
# cosine over 8 epochs, (1 + cos(pi (e - 1) / 8)) / 2 with cos(pi/8) = 0.923880,
# cos(pi/4) = 0.707107, cos(3pi/8) = 0.382683: 1, 0.961940, 0.853553, 0.691342, 0.5,
# 0.308658, 0.146447, 0.038060.
HAND = {
    "linear": [1, 1, 1, 1, 0.8, 0.6, 0.4, 0.2],
    "step": [1, 1, 1, 0.1, 0.1, 0.1, 0.01, 0.01],
    "cosine": [1, 0.961940, 0.853553, 0.691342, 0.5, 0.308658, 0.146447, 0.038060],
}


# The metric-driven policies' hand oracles are tests of their own below.
METRIC_ORACLES = {"plateau"}


def test_every_registered_policy_has_a_hand_oracle():
    """A new --lr_policy cannot go in without its rates computed by hand here."""
    by_epoch = {e.name for e in LR_POLICIES if not e.meta["needs_metric"]}
    assert sorted(HAND) == sorted(by_epoch)
    assert sorted(METRIC_ORACLES) == sorted(set(LR_POLICIES.names()) - by_epoch)


@pytest.mark.parametrize("policy", sorted(HAND))
def test_epoch_policies_by_hand(policy: str):
    assert rates(policy, 4, 4, decay_iters=3) == pytest.approx(HAND[policy], abs=1e-6)


@pytest.mark.parametrize("policy", sorted(HAND))
@pytest.mark.parametrize("epoch_count", [2, 5, 8])
def test_epoch_count_starts_inside_the_schedule(policy: str, epoch_count: int):
    """--epoch_count e: the rates of epochs e..8, the tail of the full schedule."""
    assert rates(policy, 4, 4, epoch_count, decay_iters=3) == pytest.approx(HAND[policy][epoch_count - 1:], abs=1e-6)


def test_plateau_by_hand():
    """x0.2 once the loss has not improved by 1 % (relative) for more than 5 epochs.

    Losses: 1.0 (best so far), then 0.995 five times (better by only 0.5 %: bad epochs 1-5),
    0.995 again (bad epoch 6 > patience 5: the rate drops to 0.2 after this epoch), 0.5 (a real
    improvement), then 0.499 six times (bad again: x0.2 after the sixth) -> 0.04."""
    losses = [1.0] + [0.995] * 6 + [0.5] + [0.499] * 6 + [0.499]
    got = rates("plateau", len(losses), 0, metrics=losses)
    assert got == pytest.approx([1.0] * 7 + [0.2] * 7 + [0.04], abs=1e-9)


def test_plateau_needs_the_loss():
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    with pytest.raises(ValueError, match="plateau"):
        EpochScheduler("plateau", optimizer, 2, 2).step()


def test_training_logs_the_hand_computed_rates_from_epoch_count(tmp_path: Path):
    """train.py --epoch_count 3 --n_epochs 2 --n_epochs_decay 2 trains epochs 3 and 4 at
    lr x (1 - 1/3) and x (1 - 2/3), and its checkpoint counts epochs from there."""
    data = make_aligned_dataset(tmp_path / "data", {"train": 2})
    args = tiny_args(data, tmp_path / "ck") + ["--epoch_count", "3", "--n_epochs", "2", "--n_epochs_decay", "2",
                                               "--lr", "0.003", "--print_freq", "2"]
    assert train_driver.main(args) == 0
    records = [json.loads(line) for line in (tmp_path / "ck" / "tiny" / "loss_log.jsonl").read_text().splitlines()]
    by_epoch = {r["epoch"]: r["lr"] for r in records}
    assert by_epoch == pytest.approx({3: 0.002, 4: 0.001}, rel=1e-6)
    state = torch.load(tmp_path / "ck" / "tiny" / "latest.pt", weights_only=True)["state"]
    assert state["epoch"] == 5 and state["step"] == 4
