"""Validation's figures are exactly those of one test.py command (options/validation.py
reproducing_test_command, logged at the start of training), also where training reads the
images larger than it crops them (--load_size > --crop_size), trains with batches in the
paper's mode (batch norm with batch statistics) and keeps dropout on; and the best checkpoint
compares only figures of the same validation settings."""
from __future__ import annotations

import json
import logging
import shlex
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import test as test_driver
import train as train_driver
from engine.checkpoint import load_file
from engine.checkpoint.format import sealed
from options.parse import parse_options
from options.validation import reproducing_test_command
from reporting.loss_log import read_loss_log
from reporting.metrics import IMAGE, metric_names
from tests.pipeline_helpers import make_aligned_dataset, tiny_args

# Images read at 40 px and cropped to 32 while training; batches of 2; dropout on (the default).
TRAINED = ["--load_size", "40", "--batch_size", "2", "--lr", "0.01", "--val_freq", "2", "--best_metric", "l1"]
BEHAVIOURS = {
    "paper": [],   # train-mode batch norm pools over a batch: every image runs alone
    "eval_precise_dropout": ["--eval", "--bn_eval", "precise", "--bn_precise_batches", "2", "--dropout", "on"],
}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_aligned_dataset(tmp_path_factory.mktemp("val_is_test") / "data", {"train": 4, "val": 3})


def val_records(run: Path) -> list[dict]:
    return [r for r in read_loss_log(run / "loss_log.jsonl") if "metrics" in r]


@pytest.mark.parametrize("behaviour", sorted(BEHAVIOURS))
def test_test_py_with_the_logged_command_scores_what_validation_recorded(
        data: Path, tmp_path: Path, behaviour: str, caplog: pytest.LogCaptureFixture) -> None:
    args = tiny_args(data, tmp_path / "ck") + TRAINED + BEHAVIOURS[behaviour]
    with caplog.at_level(logging.INFO):
        assert train_driver.main(args + ["--max_steps", "4"]) == 0
    run = tmp_path / "ck" / "tiny"
    command = reproducing_test_command(parse_options(args, is_train=True), 3)
    assert command in caplog.text   # the command is logged where the user sees it
    argv = shlex.split(command)
    assert argv[:2] == ["python", "test.py"] and "--load_size" not in argv
    assert test_driver.main(argv[2:] + ["--gpu_ids", "-1", "--num_threads", "0",
                                        "--results_dir", str(tmp_path / "results")]) == 0
    page = tmp_path / "results" / "tiny" / "val_best"
    tested = json.loads((page / "metrics.json").read_text())

    record = load_file(run / "best.pt")["best"]
    validated = next(r["metrics"] for r in val_records(run) if r["step"] == record["step"])
    assert set(tested["mean"]) == set(metric_names(IMAGE))
    assert tested["mean"] == pytest.approx(validated, rel=1e-9, abs=1e-12)
    assert tested["mean"]["L1"] == pytest.approx(record["value"], rel=1e-9)

    # By hand from the written images: whole images (B's stored 32 px, no crop of a 40 px resize).
    l1, psnr = [], []
    for i in range(3):
        stored_b = np.asarray(Image.open(data / "val" / f"{i:03d}.png"))[:, 32:]
        real = np.asarray(Image.open(page / "images" / f"{i:03d}_real_B.png"))
        fake = np.asarray(Image.open(page / "images" / f"{i:03d}_fake_B.png"))
        assert np.array_equal(real, stored_b)
        diff = fake.astype(np.float64) / 255 - real.astype(np.float64) / 255
        l1.append(np.abs(diff).mean())
        psnr.append(10 * np.log10(1 / (diff ** 2).mean()))
    assert validated["L1"] == pytest.approx(np.mean(l1), rel=1e-6)
    assert validated["PSNR"] == pytest.approx(np.mean(psnr), rel=1e-6)


def test_a_resume_validating_otherwise_starts_a_new_best_and_none_stops_keeping_one(
        data: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    args = tiny_args(data, tmp_path / "ck") + TRAINED
    assert train_driver.main(args + ["--max_steps", "2"]) == 0
    best = tmp_path / "ck" / "tiny" / "best.pt"
    # A best-so-far that no later score can beat, unless it is set aside.
    state = load_file(best)
    state["best"] = {**state["best"], "value": 0.0}
    torch.save(sealed(state), best)   # an edit with its digest: not damage

    caplog.clear()
    with caplog.at_level(logging.INFO):
        assert train_driver.main(args + ["--max_steps", "4", "--continue_train", "--val_max_images", "1"]) == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "best.pt" in r.getMessage()]
    assert len(warnings) == 1 and "num_test 3 -> 1" in warnings[0] and "\n" not in warnings[0]
    record = load_file(best)["best"]
    assert record["step"] in (3, 4) and record["settings"]["num_test"] == 1 and record["value"] > 0.0

    # The same settings again: the record stands and is compared with.
    caplog.clear()
    with caplog.at_level(logging.INFO):
        assert train_driver.main(args + ["--max_steps", "6", "--continue_train", "--val_max_images", "1"]) == 0
    assert "best checkpoint so far" in caplog.text and "other settings" not in caplog.text

    # --best_metric none: validation goes on, best.pt is left as it is.
    before = best.read_bytes()
    caplog.clear()
    with caplog.at_level(logging.INFO):
        assert train_driver.main(args + ["--max_steps", "8", "--continue_train", "--val_max_images", "1",
                                         "--best_metric", "none"]) == 0
    assert best.read_bytes() == before
    assert [r["step"] for r in val_records(tmp_path / "ck" / "tiny")][-2:] == [7, 8]   # still validated
    assert "best checkpoint" not in caplog.text


ROOT = Path(__file__).resolve().parents[1]


def test_the_readme_example_pair_and_metric_table_are_true() -> None:
    """The README's test.py line is the command validation logs for its train.py line (facades'
    val split: 100 images), and its metric table is the registry's."""
    import textwrap

    from reporting.metrics import readme_metric_table
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Validation and the best checkpoint"):readme.index("## Comparing runs")]
    lines = section.split("```bash\n", 1)[1].split("```", 1)[0].replace("\\\n", " ").splitlines()
    train_args = shlex.split(lines[0])[2:]
    assert lines[1] == reproducing_test_command(parse_options(train_args, is_train=True), 100)
    assert textwrap.indent(readme_metric_table(), "  ") in section


def _paired_sixteen_bit(root: Path) -> Path:
    """Gray 16-bit A/B folders (train and val), B a pixel-wise function of A; no <root>/val folder."""
    rng = np.random.default_rng(3)
    for phase, n in (("train", 2), ("val", 3)):
        for side in ("A", "B"):
            (root / side / phase).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            a = rng.integers(0, 65536, (32, 32)).astype(np.uint16)
            Image.fromarray(a).save(root / "A" / phase / f"{i:03d}.png")
            Image.fromarray((65535 - a).astype(np.uint16)).save(root / "B" / phase / f"{i:03d}.png")
    return root


def _shards(root: Path) -> Path:
    from datasets.make_shards import main as make_shards_main

    data = make_aligned_dataset(root / "folders", {"train": 2, "val": 3})
    assert make_shards_main(["--dataroot", str(data), "--output", str(root / "shards")]) == 0
    return root / "shards"


# The user's own data: split layouts other than <dataroot>/val, padding cropped back to each
# image's stored 30x30, results at 16 bits.
OWN_DATA = {
    "pad": (lambda root: make_aligned_dataset(root, {"train": 2, "val": 3}, size=30), ["--preprocess", "pad"]),
    "paired_16bit": (_paired_sixteen_bit, ["--dataset_mode", "paired", "--input_nc", "1", "--output_nc", "1"]),
    "shards": (_shards, ["--dataset_mode", "shards"]),
}


@pytest.mark.parametrize("kind", sorted(OWN_DATA))
def test_validation_of_the_users_own_data_is_what_the_logged_test_py_command_scores(
        tmp_path: Path, kind: str, caplog: pytest.LogCaptureFixture) -> None:
    make, flags = OWN_DATA[kind]
    data = make(tmp_path / "data")
    args = tiny_args(data, tmp_path / "ck") + flags + ["--val_freq", "2", "--best_metric", "l1", "--lr", "0.01"]
    with caplog.at_level(logging.INFO):
        assert train_driver.main(args + ["--max_steps", "4"]) == 0
    command = reproducing_test_command(parse_options(args, is_train=True), 3)
    assert command in caplog.text
    assert test_driver.main(shlex.split(command)[2:] + ["--gpu_ids", "-1", "--num_threads", "0",
                                                        "--results_dir", str(tmp_path / "results")]) == 0
    page = tmp_path / "results" / "tiny" / "val_best"
    tested = json.loads((page / "metrics.json").read_text())
    run = tmp_path / "ck" / "tiny"
    record = load_file(run / "best.pt")["best"]
    validated = next(r["metrics"] for r in val_records(run) if r["step"] == record["step"])
    assert tested["mean"] == pytest.approx(validated, rel=1e-9, abs=1e-12)
    written = np.asarray(Image.open(next((page / "images").glob("000_fake_B.*"))))
    assert written.shape[:2] == (30, 30) if kind == "pad" else (32, 32)
    assert written.dtype == (np.uint16 if kind == "paired_16bit" else np.uint8)


@pytest.mark.parametrize("kind, wanted", [
    ("paired", "no A folder for phase 'val'"), ("shards", "no shard index"), ("aligned", "no folder")])
def test_a_missing_validation_split_names_what_the_mode_reads(tmp_path: Path, kind: str, wanted: str,
                                                              capsys: pytest.CaptureFixture) -> None:
    if kind == "paired":
        data = _paired_sixteen_bit(tmp_path / "data")
        for side in ("A", "B"):
            for f in (data / side / "val").iterdir():
                f.unlink()
            (data / side / "val").rmdir()
        flags = ["--dataset_mode", "paired", "--input_nc", "1", "--output_nc", "1"]
    elif kind == "shards":
        data = _shards(tmp_path / "data")
        (data / "val.json").unlink()
        flags = ["--dataset_mode", "shards"]
    else:
        data, flags = make_aligned_dataset(tmp_path / "data", {"train": 2}), []
    assert train_driver.main(tiny_args(data, tmp_path / "ck") + flags + ["--val_freq", "2", "--max_steps", "2"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("train.py: error: --val_freq: no validation split 'val'")
    assert wanted in err and "--val_phase" in err
    assert not (tmp_path / "ck" / "tiny").exists()


def test_fid_reads_sixteen_bit_results_on_the_eight_bit_scale() -> None:
    from reporting.metrics import fid_batch

    eight = np.arange(48, dtype=np.uint8).reshape(4, 4, 3) * 5
    sixteen = eight.astype(np.uint16) * 257   # the same values, 16-bit (255 -> 65535)
    assert torch.equal(fid_batch([sixteen]), fid_batch([eight]))
    assert fid_batch([eight]).shape == (1, 3, 4, 4) and float(fid_batch([eight]).max()) == 235.0
