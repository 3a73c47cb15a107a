"""--keep_checkpoints N: only the N newest numbered saves stay ('<epoch>', and iter_<N> under
--save_by_iter), each removed only once a newer one is whole on disk; 'latest' and 'best' stay;
a resume that went back keeps the later saves it will write over."""
from __future__ import annotations

from pathlib import Path

import pytest

import train as train_driver
from engine.checkpoint.files import numbered_kind, prune_numbered
from tests.pipeline_helpers import make_aligned_dataset, tiny_args


def stems(folder: Path) -> set[str]:
    return {p.name for p in folder.glob("*.pt")}


def test_labels_by_hand() -> None:
    assert numbered_kind("12") == ("epoch", 12) and numbered_kind("iter_4800") == ("iter", 4800)
    assert numbered_kind("latest") is None and numbered_kind("best") is None and numbered_kind("iter_x") is None


def test_prune_keeps_the_highest_up_to_the_new_save(tmp_path: Path) -> None:
    for label in ("1", "2", "3", "5", "iter_8", "iter_16", "latest", "best"):
        (tmp_path / f"{label}.pt").write_bytes(b"x")
        (tmp_path / f"{label}_net_G.pt").write_bytes(b"x")
    # Written 3 (a resume went back from 5): 5 is left alone, 1 goes, 2 and 3 stay.
    removed = prune_numbered(tmp_path, "3", keep=2)
    assert sorted(p.name for p in removed) == ["1.pt", "1_net_G.pt"]
    assert prune_numbered(tmp_path, "latest", keep=1) == [] and prune_numbered(tmp_path, "5", keep=0) == []
    prune_numbered(tmp_path, "iter_16", keep=1)
    assert stems(tmp_path) == {f"{label}{suffix}" for label in ("2", "3", "5", "iter_16", "latest", "best")
                               for suffix in (".pt", "_net_G.pt")}


def test_a_run_keeps_the_newest_epochs_and_iters(tmp_path: Path) -> None:
    data = make_aligned_dataset(tmp_path / "data", {"train": 2})
    args = tiny_args(data, tmp_path / "ck") + ["--n_epochs", "4", "--n_epochs_decay", "0", "--save_epoch_freq", "1",
                                               "--save_by_iter", "--save_latest_freq", "2", "--keep_checkpoints", "2"]
    assert train_driver.main(args) == 0   # 4 epochs of 2 steps (batch 1): 8 samples
    run = tmp_path / "ck" / "tiny"
    assert stems(run) == {f"{label}{suffix}" for label in ("3", "4", "iter_6", "iter_8", "latest")
                          for suffix in (".pt", "_net_G.pt")}
    # Changing it on a resume is no change of the run: 0 keeps everything from here on.
    more = args[:-2]   # without --keep_checkpoints 2
    more[more.index("--n_epochs") + 1] = "5"
    assert train_driver.main([*more, "--keep_checkpoints", "0", "--continue_train"]) == 0
    assert {"3.pt", "4.pt", "5.pt", "iter_10.pt"} <= stems(run)


@pytest.mark.parametrize("value", ["-1", "two"])
def test_a_bad_count_is_one_line(tmp_path: Path, value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        train_driver.main(tiny_args(tmp_path, tmp_path / "ck") + ["--keep_checkpoints", value])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "--keep_checkpoints" in err[-1] and "Traceback" not in "\n".join(err)
    assert not (tmp_path / "ck").exists()
