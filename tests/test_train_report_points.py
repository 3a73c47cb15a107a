"""When train.py shows, keeps and saves: --update_html_freq keeps a page snapshot every N samples
whatever --display_freq is (it used to act only on display steps, every lcm of the two), the
live displays get images every --display_freq samples and the final step's images once, and a
--max_steps that ends exactly at an epoch's end still ends that epoch (validation, the <epoch>
save, the schedule's step) before it stops."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import train as train_driver
from reporting.reporter import Reporter
from tests.pipeline_helpers import make_aligned_dataset, tiny_args
from tests.test_faults import assert_same_training, weights


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_aligned_dataset(tmp_path_factory.mktemp("points"), {"train": 4, "val": 1})


def image_steps(exp: Path, tag: str = "images/fake_B") -> list[int]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(exp / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    return [e.step for e in events.Images(tag)]


def test_page_snapshots_and_live_images_each_follow_their_own_frequency(data: Path, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """4 steps an epoch, 3 epochs, batch 1: --update_html_freq 3 keeps steps 3, 6, 9 and 12 (the
    page's epochs 1, 2, 3); --display_freq 5 shows steps 5 and 10, and the last step 12 once."""
    kept: list[int] = []
    real = Reporter.report_images

    def spy(self, visuals, epoch, step, snapshot, live=True):
        if snapshot:
            kept.append(step)
        return real(self, visuals, epoch, step, snapshot, live)

    monkeypatch.setattr(Reporter, "report_images", spy)
    args = tiny_args(data, tmp_path) + ["--n_epochs", "3", "--n_epochs_decay", "0", "--display_freq", "5",
                                        "--update_html_freq", "3", "--use_tensorboard"]
    assert train_driver.main(args) == 0
    exp = tmp_path / "tiny"
    assert kept == [3, 6, 9, 12]
    assert sorted({p.name[:8] for p in (exp / "web" / "images").glob("epoch*_fake_B.png")}) == \
        ["epoch001", "epoch002", "epoch003"]
    assert image_steps(exp) == [5, 10, 12]


def test_max_steps_at_an_epochs_end_ends_that_epoch_first(data: Path, tmp_path: Path, capsys) -> None:
    """--max_steps 4 with 4 steps an epoch: epoch 1's validation, 1.pt and best.pt are written, and
    'latest' is the state after the epoch's end, so the resumed run neither validates step 4
    again nor differs from a run never stopped."""
    run = ["--n_epochs", "1", "--n_epochs_decay", "1", "--val_epoch_freq", "1", "--val_max_images", "1",
           "--best_metric", "l1", "--save_epoch_freq", "1", "--print_freq", "4", "--seed", "2"]
    assert train_driver.main(tiny_args(data, tmp_path / "full") + run) == 0
    args = tiny_args(data, tmp_path / "split") + run
    assert train_driver.main(args + ["--max_steps", "4"]) == 0
    exp = tmp_path / "split" / "tiny"
    assert "stopped after --max_steps 4, at the end of epoch 1" in capsys.readouterr().out
    assert {"1.pt", "best.pt", "latest.pt"} <= {p.name for p in exp.glob("*.pt")}
    log = [json.loads(line) for line in (exp / "loss_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "metrics" in r] == [4]
    latest = torch.load(exp / "latest.pt", weights_only=True)
    assert latest["state"]["epoch"] == 2 and latest["state"]["step"] == 4
    assert latest["schedulers"]["G"]["last_epoch"] == 1   # stepped at epoch 1's end

    assert train_driver.main(args + ["--continue_train"]) == 0
    log = [json.loads(line) for line in (exp / "loss_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "metrics" in r] == [4, 8]
    full = [json.loads(line) for line in (tmp_path / "full" / "tiny" / "loss_log.jsonl").read_text().splitlines()]
    assert [(r["step"], r.get("lr"), r.get("metrics")) for r in log] == \
        [(r["step"], r.get("lr"), r.get("metrics")) for r in full]
    assert_same_training(weights(exp / "latest.pt"), weights(tmp_path / "full" / "tiny" / "latest.pt"))


def test_the_last_steps_images_reach_the_live_displays_once(data: Path, tmp_path: Path) -> None:
    """The last step (12) is a display step: TensorBoard gets its images once, not a second time
    as the run's final picture."""
    args = tiny_args(data, tmp_path) + ["--n_epochs", "3", "--n_epochs_decay", "0", "--display_freq", "6",
                                        "--use_tensorboard"]
    assert train_driver.main(args) == 0
    assert image_steps(tmp_path / "tiny") == [6, 12]
    assert image_steps(tmp_path / "tiny", "images/real_A") == [6, 12]
