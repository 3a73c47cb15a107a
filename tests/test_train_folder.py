"""The experiment folder of a run that is refused, and of a fresh run over an earlier one
(engine/run_folder.py): a refusal leaves the folder as it was (or uncreated), and --overwrite
moves everything the earlier run left into overwritten_<time>/, where no loader looks."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

import train as train_driver
from tests.pipeline_helpers import make_aligned_dataset, tiny_args


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every entry under ``folder`` by relative path: a file's bytes, None for a folder."""
    return {p.relative_to(folder).as_posix(): (p.read_bytes() if p.is_file() else None)
            for p in sorted(folder.rglob("*"))}


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return make_aligned_dataset(tmp_path / "data", {"train": 2, "val": 2})


@pytest.fixture
def earlier_run(data: Path, tmp_path: Path) -> tuple[list[str], Path]:
    """A finished run with every kind of file a run leaves: latest, iter_<N>, best, a loss log, a
    page, train_opt.txt, and an ONNX export beside them."""
    args = tiny_args(data, tmp_path / "ck") + ["--max_steps", "2", "--print_freq", "1", "--update_html_freq", "1"]
    assert train_driver.main(args + ["--val_freq", "2", "--best_metric", "psnr", "--save_by_iter",
                                     "--save_latest_freq", "1"]) == 0
    exp = tmp_path / "ck" / "tiny"
    (exp / "latest_net_G.onnx").write_bytes(b"an export of the earlier run")
    assert {"best.pt", "iter_1.pt", "iter_2.pt", "loss_log.jsonl", "web", "train_opt.txt"} <= set(snapshot(exp))
    return args, exp


def refusals(data: Path) -> dict[str, list[str]]:
    (data / "empty_val").mkdir()
    return {"missing split": ["--val_freq", "2", "--val_phase", "nosuch"],
            "empty split": ["--val_freq", "2", "--val_phase", "empty_val"]}


@pytest.mark.parametrize("case", ["missing split", "empty split"])
def test_refused_overwrite_leaves_the_earlier_run_untouched(earlier_run, data: Path, capsys, case: str) -> None:
    args, exp = earlier_run
    before = snapshot(exp)
    capsys.readouterr()
    assert train_driver.main(args + ["--overwrite"] + refusals(data)[case]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("train.py: error"), err
    assert snapshot(exp) == before


@pytest.mark.parametrize("case", ["missing split", "empty split"])
def test_refused_fresh_run_creates_no_folder(data: Path, tmp_path: Path, case: str) -> None:
    args = tiny_args(data, tmp_path / "ck", "fresh") + ["--max_steps", "1"] + refusals(data)[case]
    assert train_driver.main(args) == 1
    assert not (tmp_path / "ck").exists()


def test_overwrite_moves_the_earlier_run_aside(earlier_run, capsys) -> None:
    args, exp = earlier_run
    before = snapshot(exp)
    (exp / "mine").mkdir()   # no run's file (a user's data may live here): left where it is
    (exp / "mine" / "notes.txt").write_text("kept")
    capsys.readouterr()
    assert train_driver.main(args + ["--overwrite", "--max_steps", "1"]) == 0
    assert (exp / "mine" / "notes.txt").read_text() == "kept"
    moved = [p for p in exp.iterdir() if p.name.startswith("overwritten_")]
    assert len(moved) == 1 and re.fullmatch(r"overwritten_\d{8}-\d{6}", moved[0].name)
    # Nothing lost: the earlier run's files, byte for byte, in the new subfolder.
    assert snapshot(moved[0]) == before
    out = capsys.readouterr().out
    assert f"the previous run's files are in {moved[0]}; delete it when you no longer need them" in out
    # Nothing stale: the top folder holds the new run's files only.
    top = {p.name for p in exp.iterdir()} - {moved[0].name, "mine"}
    assert top == {"latest.pt", "latest_net_G.pt", "loss_log.jsonl", "train_opt.txt", "web"}
    assert len((exp / "loss_log.jsonl").read_text().splitlines()) == 1


def test_loaders_do_not_find_the_moved_run(earlier_run, capsys) -> None:
    args, exp = earlier_run
    assert train_driver.main(args + ["--overwrite", "--max_steps", "1"]) == 0
    capsys.readouterr()
    # The earlier run's iter_2 is only in overwritten_*/: resuming from it is refused, not done.
    assert train_driver.main(args + ["--continue_train", "--load_iter", "2", "--max_steps", "3"]) == 1
    assert "no such checkpoint" in capsys.readouterr().err
    # --continue_train auto without latest falls back to the top folder's checkpoints only: none.
    for name in ("latest.pt", "latest_net_G.pt"):
        (exp / name).unlink()
    assert train_driver.main(args + ["--continue_train", "auto", "--max_steps", "1"]) == 0
    assert "resumed from" not in capsys.readouterr().out


def test_a_second_overwrite_keeps_the_first_aside(earlier_run) -> None:
    args, exp = earlier_run
    assert train_driver.main(args + ["--overwrite", "--max_steps", "1"]) == 0
    assert train_driver.main(args + ["--overwrite", "--max_steps", "1"]) == 0
    moved = sorted(p for p in exp.iterdir() if p.name.startswith("overwritten_"))
    assert len(moved) == 2 and all(p.is_dir() for p in moved)   # side by side, not nested
    assert not any(q.name.startswith("overwritten_") for p in moved for q in p.iterdir())
