"""Validation under 2 processes (gloo on CPU) scores exactly what ``test.py --epoch best`` (one
process) reports, with dropout on at test time (the paper's mode): each batch's dropout masks
depend only on (--seed, the batch's position in the split), not on which rank ran it.

Rank 1 runs split batches 1, 3, ...; seeded once per split (the old way) its first batch drew
the masks test.py draws for batch 0, and the figures differed."""
from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
import torch

import test as test_driver
import train as train_driver
from engine.checkpoint import load_file
from inference.split_inference import seed_batch
from options.parse import parse_options
from options.validation import reproducing_test_command
from reporting.loss_log import read_loss_log
from reporting.metrics import IMAGE, metric_names
from tests.pipeline_helpers import make_aligned_dataset, tiny_args

VAL_IMAGES = 5   # odd: rank 0 runs one batch more than rank 1
TRAINED = ["--batch_size", "2", "--lr", "0.01", "--val_freq", "4", "--best_metric", "l1", "--max_steps", "2",
           "--amp", "none", "--nproc", "2"]
BEHAVIOURS = {
    # train-mode batch norm pools over a batch: every image runs alone (batch k = image k)
    "paper": ["--norm", "batch"],
    # eval-mode batch norm keeps test.py's batches of 2: {0,1} {2,3} {4}, rank 1 runs only {2,3};
    # the statistics are measured on training batches first (rank 0's are broadcast)
    "eval_precise_dropout": ["--norm", "batch", "--eval", "--bn_eval", "precise", "--bn_precise_batches", "2",
                             "--dropout", "on"],
}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_aligned_dataset(tmp_path_factory.mktemp("val_ranks") / "data", {"train": 4, "val": VAL_IMAGES})


@pytest.mark.parametrize("behaviour", sorted(BEHAVIOURS))
def test_two_process_validation_scores_what_one_process_test_py_reports(data: Path, tmp_path: Path,
                                                                        behaviour: str) -> None:
    args = tiny_args(data, tmp_path / "ck") + TRAINED + BEHAVIOURS[behaviour]
    assert train_driver.main(args) == 0
    run = tmp_path / "ck" / "tiny"
    record = load_file(run / "best.pt")["best"]
    validated = next(r["metrics"] for r in read_loss_log(run / "loss_log.jsonl")
                     if "metrics" in r and r["step"] == record["step"])

    argv = shlex.split(reproducing_test_command(parse_options(args, is_train=True), VAL_IMAGES))[2:]
    assert "--nproc" not in argv   # test.py runs in one process
    assert test_driver.main(argv + ["--gpu_ids", "-1", "--num_threads", "0",
                                    "--results_dir", str(tmp_path / "results")]) == 0
    tested = json.loads((tmp_path / "results" / "tiny" / "val_best" / "metrics.json").read_text())
    assert set(tested["mean"]) == set(metric_names(IMAGE)) and len(tested["images"]) == VAL_IMAGES
    for name in metric_names(IMAGE):
        assert tested["mean"][name] == pytest.approx(validated[name], rel=1e-6, abs=1e-6), name


def test_a_batch_draws_by_its_position_whatever_ran_before() -> None:
    """The oracle of the masks: torch's generator seeded by (seed, batch index) alone."""
    seed_batch(3, 1)
    first = torch.rand(8)
    torch.rand(100)          # another batch, a measurement: draws in between do not matter
    seed_batch(3, 1)
    assert torch.equal(torch.rand(8), first)
    seed_batch(3, 0)
    assert not torch.equal(torch.rand(8), first)
    seed_batch(4, 1)
    assert not torch.equal(torch.rand(8), first)
