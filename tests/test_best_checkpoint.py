"""--best_metric: best.pt / best_net_G.pt hold the state that scored best on validation, with
the score recorded; every program that loads G takes --epoch best; resume keeps the best."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import export
import serve
import test as test_driver
import train as train_driver
import translate
from engine.checkpoint import load_file
from engine.checkpoint.format import sealed
from inference.generator import load_generator, translator_for
from reporting.loss_log import read_loss_log
from tests.pipeline_helpers import make_aligned_dataset, tiny_args, without

# The paper's test mode (batch statistics) without dropout: validation and test.py run G alike.
STEERED = ["--norm", "batch", "--no_dropout", "--lr", "0.01", "--print_freq", "1",
           "--val_freq", "1", "--best_metric", "l1"]


@pytest.fixture(scope="module")
def steered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("best")
    data = make_aligned_dataset(root / "data", {"train": 3, "val": 3})
    assert train_driver.main(tiny_args(data, root / "ck") + STEERED + ["--max_steps", "6"]) == 0
    return data, root / "ck"


def val_records(run: Path) -> list[dict]:
    return [r for r in read_loss_log(run / "loss_log.jsonl") if "metrics" in r]


def test_best_is_the_lowest_validation_l1_with_its_step_recorded_in_both_files(steered) -> None:
    _, ck = steered
    records = val_records(ck / "tiny")
    assert [r["step"] for r in records] == [1, 2, 3, 4, 5, 6]
    winner = min(records, key=lambda r: (r["metrics"]["L1"], r["step"]))
    assert winner["step"] != 6   # the best is not simply the last state
    full, generator = load_file(ck / "tiny" / "best.pt"), load_file(ck / "tiny" / "best_net_G.pt")
    expected = {"metric": "L1", "value": winner["metrics"]["L1"], "step": winner["step"], "epoch": winner["epoch"]}
    assert full["best"] == generator["best"]
    assert {k: full["best"][k] for k in expected} == expected
    settings = full["best"]["settings"]   # what the figure was measured under
    assert {k: settings[k] for k in ("phase", "num_test", "crop_size", "eval", "dropout", "batch_size")} == {
        "phase": "val", "num_test": 3, "crop_size": 32, "eval": False, "dropout": "on", "batch_size": 1}
    assert full["state"]["step"] == winner["step"]


def test_test_py_epoch_best_scores_what_validation_scored(steered, tmp_path: Path) -> None:
    data, ck = steered
    args = without(tiny_args(data, ck), "--display_id", "--ngf", "--ndf")
    assert test_driver.main(args + ["--epoch", "best", "--phase", "val", "--results_dir",
                                    str(tmp_path)]) == 0
    saved = json.loads((tmp_path / "tiny" / "val_best" / "metrics.json").read_text())
    assert saved["checkpoint"].endswith("best_net_G.pt")
    record = load_file(ck / "tiny" / "best.pt")["best"]
    assert saved["mean"]["L1"] == pytest.approx(record["value"], rel=1e-9)


def test_translate_serve_and_export_take_epoch_best(steered, tmp_path: Path) -> None:
    data, ck = steered
    # The oracle: a copy of the run whose 'latest' files are the best ones.
    twin = tmp_path / "ck" / "tiny"
    shutil.copytree(ck / "tiny", twin)
    for suffix in (".pt", "_net_G.pt"):
        shutil.copy(ck / "tiny" / f"best{suffix}", twin / f"latest{suffix}")
    image = tmp_path / "in" / "a.png"
    image.parent.mkdir()
    Image.open(data / "val" / "000.png").crop((0, 0, 32, 32)).save(image)

    def translated(checkpoints: Path, *extra: str) -> np.ndarray:
        out = tmp_path / f"out{len(list(tmp_path.iterdir()))}"
        assert translate.main(["--name", "tiny", "--checkpoints_dir", str(checkpoints), "--gpu_ids", "-1",
                               "--input", str(image), "--output", str(out), "--eval", *extra]) == 0
        return np.asarray(Image.open(out / "a.png"))

    best = translated(ck, "--epoch", "best")
    assert np.array_equal(best, translated(tmp_path / "ck"))
    assert not np.array_equal(best, translated(ck))   # latest is another state

    opt = serve.parse(["--name", "tiny", "--checkpoints_dir", str(ck), "--gpu_ids", "-1", "--epoch", "best",
                       "--eval"])
    served = translator_for(load_generator(opt))(Image.open(image).convert("RGB"))
    assert np.array_equal(np.asarray(served), best)


def test_export_takes_epoch_best(tmp_path: Path) -> None:
    from tests.test_export import UNET, facade_batch, run_onnx
    from tests.test_translate import save_ours
    run = tmp_path / "ck" / "exp"
    best_net = save_ours(run, seed=1, **UNET)
    for suffix in ("_net_G.pt",):
        (run / f"latest{suffix}").rename(run / f"best{suffix}")
    save_ours(run, seed=2, **UNET)   # 'latest': other weights
    assert export.main(["--name", "exp", "--checkpoints_dir", str(tmp_path / "ck"), "--gpu_ids", "-1",
                        "--epoch", "best"]) == 0
    best_net.eval()
    x = facade_batch()[:1]
    with torch.no_grad():
        expected = best_net(x).numpy()
    assert np.abs(run_onnx(run / "best_net_G.onnx", x) - expected).max() < 1e-4


def test_resume_keeps_the_best_so_far(steered, tmp_path: Path) -> None:
    data, _ = steered
    ck = tmp_path / "ck"
    args = tiny_args(data, ck) + STEERED
    assert train_driver.main(args + ["--max_steps", "2"]) == 0
    best = ck / "tiny" / "best.pt"

    # A best-so-far no later score can beat: resuming leaves both files as they are.
    state = load_file(best)
    state["best"] = {**state["best"], "value": 0.0}
    torch.save(sealed(state), best)   # an edit with its digest: not damage
    before = {p: p.read_bytes() for p in (best, ck / "tiny" / "best_net_G.pt")}
    assert train_driver.main(args + ["--max_steps", "4", "--continue_train"]) == 0
    assert all(p.read_bytes() == content for p, content in before.items())

    # One that any score beats: the first validation after the resume replaces it.
    state["best"] = {**state["best"], "value": 1.0}
    torch.save(sealed(state), best)   # an edit with its digest: not damage
    assert train_driver.main(args + ["--max_steps", "5", "--continue_train"]) == 0
    assert load_file(best)["best"]["step"] == 5

    # A fresh run over the folder does not inherit the old run's best.
    assert train_driver.main(without(args, "--best_metric") + ["--max_steps", "1", "--overwrite"]) == 0
    assert not best.exists() and not (ck / "tiny" / "best_net_G.pt").exists()


@pytest.mark.parametrize("extra, message", [
    (["--best_metric", "psnr"], "--best_metric psnr needs validation: add --val_freq"),
    (["--val_freq", "2", "--best_metric", "fid"], "--best_metric fid needs --val_fid"),
    (["--val_fid"], "--val_fid needs validation"),
])
def test_option_mistakes_are_one_line(tmp_path: Path, capsys, extra: list[str], message: str) -> None:
    data = make_aligned_dataset(tmp_path / "data", {"train": 2, "val": 2})
    with pytest.raises(SystemExit) as exit_info:
        train_driver.main(tiny_args(data, tmp_path / "ck") + extra)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and message in err


def test_missing_validation_split_is_one_line_naming_the_folder(tmp_path: Path, capsys) -> None:
    data = make_aligned_dataset(tmp_path / "data", {"train": 2})
    assert train_driver.main(tiny_args(data, tmp_path / "ck") + ["--val_freq", "1", "--max_steps", "1"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"no validation split 'val' for --dataset_mode aligned (no folder {data / 'val'})" in err
    assert "--val_phase" in err
    assert not (tmp_path / "ck" / "tiny" / "latest.pt").exists()
