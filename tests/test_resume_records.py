"""A resumed run keeps one record of each step. After a kill (simulated: a run stopped by
--max_steps at step 3, then the records a killed process would have gone on writing for steps
4 to 6, and a torn line), or a resume from an earlier checkpoint (--continue_train --epoch 1),
the loss log, the page's curves drawn from it and TensorBoard hold steps 1 to 8 once each, in
order, with the values of a run never interrupted (the oracle): what came after the resumed
step is moved to loss_log.dropped.jsonl, and TensorBoard purges it."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import train as train_driver
from reporting.loss_log import DROPPED_NAME, read_loss_log
from tests.pipeline_helpers import make_aligned_dataset, tiny_args

# 4 pairs, batch 1: 4 steps an epoch, 8 in all; a point every step, validation every 2.
RUN = ["--n_epochs", "1", "--n_epochs_decay", "1", "--print_freq", "1", "--val_freq", "2", "--val_max_images", "1",
       "--save_epoch_freq", "1", "--use_tensorboard", "--seed", "5"]
KILLED_VALUE = 999.0   # what the simulated killed process logged: must be gone from every curve


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_aligned_dataset(tmp_path_factory.mktemp("records"), {"train": 4, "val": 1})


@pytest.fixture(scope="module")
def oracle(data: Path, tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    ck = tmp_path_factory.mktemp("oracle")
    assert train_driver.main(tiny_args(data, ck) + RUN) == 0
    return read_loss_log(ck / "tiny" / "loss_log.jsonl")


def keyed(records: list[dict]) -> list[tuple]:
    """(step, kind, values) of each record, in file order."""
    return [(r["step"], "val" if "metrics" in r else "train", r.get("metrics") or r["losses"]) for r in records]


def tensorboard_steps(exp: Path, tag: str) -> list[tuple[int, float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(exp / "tensorboard"))
    events.Reload()
    return [(e.step, e.value) for e in events.Scalars(tag)]


def simulate_the_rest_of_a_killed_run(exp: Path, steps: range) -> None:
    """What a process killed after step steps[-1] leaves beyond the checkpoint: log lines, a torn
    one, and TensorBoard events."""
    from torch.utils.tensorboard import SummaryWriter

    with (exp / "loss_log.jsonl").open("a") as f:
        for step in steps:
            f.write(json.dumps({"epoch": 1, "epoch_iter": step, "step": step, "epoch_frac": step / 4, "lr": 2e-4,
                                "losses": {"G_GAN": KILLED_VALUE, "G_L1": KILLED_VALUE}}) + "\n")
        f.write('{"epoch": 2, "epoch_iter": 3, "step": 7, "epoch_f')   # cut short by the kill
    writer = SummaryWriter(str(exp / "tensorboard"))
    for step in steps:
        writer.add_scalar("loss/G_L1", KILLED_VALUE, global_step=step)
    writer.close()


def test_a_killed_run_resumed_logs_each_step_once(data: Path, tmp_path: Path, oracle: list[dict]) -> None:
    args = tiny_args(data, tmp_path) + RUN
    exp = tmp_path / "tiny"
    assert train_driver.main(args + ["--max_steps", "3"]) == 0
    simulate_the_rest_of_a_killed_run(exp, range(4, 7))
    assert train_driver.main(args + ["--continue_train"]) == 0

    records = read_loss_log(exp / "loss_log.jsonl")
    steps = [r["step"] for r in records if "losses" in r]
    assert steps == list(range(1, 9))   # strictly increasing, each once
    assert keyed(records) == keyed(oracle)
    dropped = (exp / DROPPED_NAME).read_text().splitlines()
    assert len(dropped) == 4 and all(str(KILLED_VALUE) in line for line in dropped[:3])
    g_l1 = tensorboard_steps(exp, "loss/G_L1")
    assert [step for step, _ in g_l1] == list(range(1, 9))
    assert [value for _, value in g_l1] == pytest.approx([r["losses"]["G_L1"] for r in oracle if "losses" in r])
    assert [step for step, _ in tensorboard_steps(exp, "val/L1")] == [2, 4, 6, 8]


def test_a_resume_from_an_earlier_checkpoint_replaces_the_later_records(data: Path, tmp_path: Path,
                                                                      oracle: list[dict]) -> None:
    args = tiny_args(data, tmp_path) + RUN
    exp = tmp_path / "tiny"
    assert train_driver.main(args) == 0
    assert train_driver.main(args + ["--continue_train", "--epoch", "1"]) == 0   # epoch 1 ended at step 4
    records = read_loss_log(exp / "loss_log.jsonl")
    assert keyed(records) == keyed(oracle)
    dropped = [json.loads(line) for line in (exp / DROPPED_NAME).read_text().splitlines()]
    assert sorted({r["step"] for r in dropped}) == [5, 6, 7, 8]
    assert [step for step, _ in tensorboard_steps(exp, "loss/G_L1")] == list(range(1, 9))
