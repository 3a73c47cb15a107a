"""test.py's log lines: a checkpoint trained with --amp none says fp32 ("trained in none" read
as if the precision were unknown), and a typed --epoch beside --load_iter is said to name only
the results folder (it was silently unused for loading)."""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

import test as test_driver
from engine.checkpoint.format import Execution
from tests.pipeline_helpers import make_aligned_dataset
from tests.test_translate import save_ours


def test_amp_none_is_described_as_fp32() -> None:
    assert Execution("none", "--amp auto", "PASSIVE").describe() == \
        "trained in fp32 (decided by --amp auto), OpenMP wait PASSIVE"
    assert Execution("bf16", "--amp auto", "PASSIVE").describe() == \
        "trained in bf16 (decided by --amp auto), OpenMP wait PASSIVE"


def test_a_typed_epoch_beside_load_iter_is_said_to_name_only_the_folder(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    data = make_aligned_dataset(tmp_path / "data", {"test": 1})
    exp = tmp_path / "ck" / "exp"
    save_ours(exp, netG="resnet_6blocks", ngf=2, norm="instance", no_dropout=True)
    shutil.copy(exp / "latest_net_G.pt", exp / "iter_2_net_G.pt")
    (exp / "latest_net_G.pt").unlink()
    common = ["--dataroot", str(data), "--name", "exp", "--checkpoints_dir", str(tmp_path / "ck"), "--gpu_ids", "-1",
              "--num_threads", "0", "--load_size", "32", "--crop_size", "32", "--results_dir", str(tmp_path / "r"),
              "--load_iter", "2"]
    with caplog.at_level(logging.INFO):
        assert test_driver.main(common + ["--epoch", "7"]) == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["--load_iter 2 loads iter_2's checkpoint; the typed --epoch 7 only names the results folder "
                        "(test_7_iter2), as in the reference"]
    assert (tmp_path / "r" / "exp" / "test_7_iter2" / "metrics.json").is_file()
    caplog.clear()
    with caplog.at_level(logging.INFO):
        assert test_driver.main(common) == 0   # --epoch not typed: nothing to say
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]


def test_the_readme_states_how_test_py_and_translate_py_seed_dropout() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme[readme.index("### Test-time behaviour"):readme.index("## Normalization and batch norm")]
    text = " ".join(section.split())
    assert "also on `--batch_size`" in text and "their masks are not test.py's" in text
    assert "with `--eval` (dropout off) they agree exactly" in text
