"""A make_shards.py run killed part way (kill -9: none of its own clean-up runs) leaves nothing
that outlives the next run, and a set whose indexes were only partly moved in can be completed.
The oracles: the files on disk, and the completed set read against its folder.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

import datasets.make_shards as make_shards_module
from data import DataConfig, create_dataset
from datasets.make_shards import main as make_shards_main
from tests.pipeline_helpers import make_aligned_dataset


class Killed(BaseException):
    """SIGKILL, as far as make_shards can tell: no except or finally of its own runs."""


def kill_on_move(monkeypatch: pytest.MonkeyPatch, output: Path, after: int) -> None:
    """Make make_shards die when it moves its ``after + 1``-th file into ``output``, with none
    of its clean-up run (a kill -9)."""
    real_replace, moved = os.replace, []

    def replace(src: os.PathLike, dst: os.PathLike) -> None:
        if Path(dst).parent == output:
            if len(moved) == after:
                raise Killed()
            moved.append(dst)
        real_replace(src, dst)

    monkeypatch.setattr(make_shards_module.os, "replace", replace)
    monkeypatch.setattr(make_shards_module.shutil, "rmtree", lambda *args, **kwargs: None)


def test_a_killed_run_leaves_no_hidden_copy_once_run_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = make_aligned_dataset(tmp_path / "pairs", {"train": 3})
    out = tmp_path / "sets" / "out"
    args = ["--dataroot", str(source), "--output", str(out), "--samples_per_shard", "1"]
    with monkeypatch.context() as patch:
        kill_on_move(patch, out, after=0)
        with pytest.raises(Killed):
            make_shards_main(args)
    hidden = [p for p in (tmp_path / "sets").iterdir() if p.name.startswith(".")]
    assert len(hidden) == 1 and sorted(p.name for p in hidden[0].iterdir()) == \
        ["train-000000.tar", "train-000001.tar", "train-000002.tar", "train.json"]   # the kill left the set there
    assert make_shards_main(args) == 0
    assert sorted(p.name for p in (tmp_path / "sets").iterdir()) == ["out"]


def test_a_set_killed_between_its_index_moves_can_be_completed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    source = make_aligned_dataset(tmp_path / "pairs", {"train": 2, "test": 3})
    out = tmp_path / "out"
    args = ["--dataroot", str(source), "--output", str(out), "--samples_per_shard", "1"]
    with monkeypatch.context() as patch:
        kill_on_move(patch, out, after=6)   # 5 tars and test.json moved; train.json not
        with pytest.raises(Killed):
            make_shards_main(args)
    assert sorted(p.name for p in out.iterdir()) == [f"test-00000{i}.tar" for i in range(3)] + [
        "test.json", "train-000000.tar", "train-000001.tar"]
    assert make_shards_main(args) == 2
    assert capsys.readouterr().err == (f"make_shards: {out / 'test.json'}: already exists; choose another output "
                                       "folder, or add the phases it lacks with --phases train\n")
    # Completed with other shard sizes: the killed run's train shards, which no index names, go.
    assert make_shards_main([*args[:4], "--phases", "train"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [f"test-00000{i}.tar" for i in range(3)] + [
        "test.json", "train-000000.tar", "train.json"]
    train = create_dataset("shards", DataConfig(out, shard_cache=tmp_path / "c", preprocess="none"))
    folder = create_dataset("aligned", DataConfig(source, preprocess="none"))
    assert len(train) == 2 and all(torch.equal(train[i]["A"], folder[i]["A"]) for i in range(2))
