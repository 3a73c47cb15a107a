"""--lr_policy and --epoch_count: the learning rate of every epoch against hand computations.

The scheduler steps once at the end of each epoch, so the rate during epoch e is the base rate
times the policy's factor for e; a run that starts at --epoch_count e starts at that factor."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import train as train_driver
from models.schedulers import LR_POLICIES, EpochScheduler, Schedule
from tests.pipeline_helpers import make_aligned_dataset, tiny_args


def rates(policy: str, n_epochs: int, n_epochs_decay: int, epoch_count: int = 1, decay_iters: int = 50,
          metrics: list[float] | None = None) -> list[float]:
    """The rate in force during each epoch from epoch_count to the last (base rate 1)."""
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    scheduler = EpochScheduler(policy, optimizer, Schedule(n_epochs, n_epochs_decay, epoch_count, decay_iters))
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
        EpochScheduler("plateau", optimizer, Schedule(2, 2)).step()


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


DECAY_ITERS = 3   # the step policy's, as in HAND


def saved_schedule(policy: str, n_epochs: int, n_epochs_decay: int, epochs_done: int, lr: float = 1.0,
                   metrics: list[float] | None = None) -> tuple[dict, dict]:
    """The optimizer and scheduler states of a run that has finished ``epochs_done`` epochs."""
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    scheduler = EpochScheduler(policy, optimizer, Schedule(n_epochs, n_epochs_decay, 1, DECAY_ITERS))
    for i in range(epochs_done):
        scheduler.step(metrics[i] if metrics else None)
    return optimizer.state_dict(), scheduler.state_dict()


def resumed(policy: str, n_epochs: int, n_epochs_decay: int, saved: tuple[dict, dict], lr: float = 1.0,
            epoch_count: int = 1) -> EpochScheduler:
    """What the resume does: a fresh optimizer and scheduler from this run's options, then the
    checkpoint's optimizer state, then its scheduler state (models/base_model.load_state_dict)."""
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    scheduler = EpochScheduler(policy, optimizer, Schedule(n_epochs, n_epochs_decay, epoch_count, DECAY_ITERS))
    optimizer.load_state_dict(saved[0])
    scheduler.load_state_dict(saved[1])
    return scheduler


@pytest.mark.parametrize("policy", sorted(HAND))
def test_an_unchanged_resume_goes_on_at_the_saved_rate(policy: str):
    """Resumed after e epochs with the same options: the rates of the rest are the full run's, to the bit."""
    for done in range(0, 8):
        scheduler = resumed(policy, 4, 4, saved_schedule(policy, 4, 4, done))
        rest = []
        for _ in range(done, 8):
            rest.append(scheduler.lr())
            scheduler.step()
        assert rest == rates(policy, 4, 4, decay_iters=DECAY_ITERS)[done:]


def test_extending_a_finished_linear_run_trains_at_the_new_schedules_rate():
    """1 + 1 epochs done (the optimizer's saved rate after the last epoch: 1 - 2/2 = 0), resumed
    with --n_epochs_decay 3: epochs 3 and 4 train at 1 - (3-1)/4 = 0.5 and 1 - (4-1)/4 = 0.25, by hand."""
    saved = saved_schedule("linear", 1, 1, 2)
    assert saved[0]["param_groups"][0]["lr"] == 0.0
    scheduler = resumed("linear", 1, 3, saved)
    got = []
    for _ in range(2):
        got.append(scheduler.lr())
        scheduler.step()
    assert got == pytest.approx([0.5, 0.25], abs=1e-12)


def test_a_changed_policy_or_rate_applies_from_the_resumed_epoch():
    """linear 4 + 4 for 5 epochs, resumed as cosine over 8 epochs at --lr 0.5: epoch 6 trains at
    0.5 (1 + cos(5 pi / 8)) / 2 = 0.5 x 0.308658."""
    scheduler = resumed("cosine", 4, 4, saved_schedule("linear", 4, 4, 5), lr=0.5)
    assert scheduler.lr() == pytest.approx(0.5 * 0.308658, abs=1e-6)
    scheduler.step()
    assert scheduler.lr() == pytest.approx(0.5 * 0.146447, abs=1e-6)


def test_plateau_keeps_its_saved_state_and_a_switch_to_it_starts_at_the_initial_rate():
    losses = [1.0] + [0.995] * 6
    saved = saved_schedule("plateau", 10, 0, 7, metrics=losses)
    assert saved[0]["param_groups"][0]["lr"] == pytest.approx(0.2)  # dropped after the 7th epoch
    scheduler = resumed("plateau", 10, 0, saved)
    assert scheduler.lr() == pytest.approx(0.2) and scheduler.state_dict()["num_bad_epochs"] == 0
    assert scheduler.state_dict()["best"] == 1.0
    switched = resumed("plateau", 10, 0, saved_schedule("linear", 2, 2, 3))   # linear was at 1 - 1/3
    assert switched.lr() == 1.0 and switched.state_dict()["last_epoch"] == 3


def test_a_scheduler_step_before_any_optimizer_step_is_quiet():
    """A resume from a 'latest' saved at an epoch's last step ends that epoch before it takes a
    step: torch's "lr_scheduler.step() before optimizer.step()" warning would be false there."""
    import warnings

    scheduler = resumed("linear", 1, 1, saved_schedule("linear", 1, 1, 0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scheduler.step()
    assert scheduler.lr() == pytest.approx(0.5)


def test_a_resume_that_extends_a_finished_run_logs_the_new_rates(tmp_path: Path):
    """train.py end to end: 1 + 1 epochs finished (the last at lr/2), then --continue_train
    --n_epochs_decay 3: epochs 3 and 4 log 0.003 x 2/4 and 0.003 x 1/4, not the saved 0."""
    data = make_aligned_dataset(tmp_path / "data", {"train": 2})
    args = tiny_args(data, tmp_path / "ck") + ["--n_epochs", "1", "--lr", "0.003", "--print_freq", "2"]
    assert train_driver.main(args + ["--n_epochs_decay", "1"]) == 0
    assert train_driver.main(args + ["--n_epochs_decay", "3", "--continue_train"]) == 0
    records = [json.loads(line) for line in (tmp_path / "ck" / "tiny" / "loss_log.jsonl").read_text().splitlines()]
    by_epoch = {r["epoch"]: r["lr"] for r in records}
    assert by_epoch == pytest.approx({1: 0.003, 2: 0.0015, 3: 0.0015, 4: 0.00075}, rel=1e-6)
