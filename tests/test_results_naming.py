"""test.py's results folder and file names (reporting/results_layout.py): two inputs that share
a file stem keep both their results, and a --load_iter test lands where the reference puts it
(and where compare.py --load_iter looks)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import compare as compare_driver
import test as test_driver
from reporting.results_layout import ResultNames, results_folder
from tests.pipeline_helpers import train_tiny_run


def test_names_by_hand() -> None:
    names = ResultNames()
    assert names.name_for("/d/A/test/sub1/x.png") == "x"
    assert names.name_for("/d/A/test/sub2/x.png") == "sub2_x"
    assert names.name_for("/d/A/test/sub1/x.png") == "x"            # the same path keeps its name
    assert names.name_for("/d/A/test/sub1/x.bmp") == "x_bmp"        # beside the first: its extension
    assert names.name_for("/e/other/sub2/x.png") == "other_sub2_x"  # sub2_x is taken: one folder more
    assert names.name_for("/d/A/test/sub2_x.png") == "test_sub2_x"  # a stem that is a name given before
    assert names.name_for("/d/A/test/y.png") == "y"


def test_names_differ_beyond_case() -> None:
    # macOS and Windows fold case: A.png's and a.png's results must not share a file there.
    names = ResultNames()
    given = [names.name_for(p) for p in ("/d/t/A.png", "/d/t/a.png", "/d/t/a.PNG", "/d/t/a.Png", "/d/t/B.png")]
    assert given == ["A", "a_png", "t_a", "d_t_a", "B"]   # a_PNG is a_png folded: a folder instead
    assert len({n.casefold() for n in given}) == len(given)
    assert names.name_for("/d/t/a.png") == "a_png"   # the same path keeps its name
    # é composed (NFC, as Linux tools write it) and combining (NFD, as macOS writes it) is one name there.
    assert [names.name_for(p) for p in ("/d/t/caf\u00e9.png", "/d/t/cafe\u0301.png")] == ["caf\u00e9", "cafe\u0301_png"]


def test_folder_names_follow_the_reference() -> None:
    # The reference: f"{phase}_{epoch}", and f"_iter{load_iter}" appended when load_iter > 0.
    assert results_folder("r", "run", "test", "latest") == Path("r/run/test_latest")
    assert results_folder("r", "run", "val", "best") == Path("r/run/val_best")
    assert results_folder("r", "run", "test", "latest", load_iter=200) == Path("r/run/test_latest_iter200")


def _save(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return train_tiny_run(tmp_path_factory.mktemp("run"), test_images=2)


def test_inputs_sharing_a_stem_keep_their_own_results(tiny_run: tuple[Path, Path], tmp_path: Path) -> None:
    _, ck = tiny_run
    rng = np.random.default_rng(3)
    inputs = {}
    for rel in ("sub1/x.png", "sub2/x.png", "a.png", "a.bmp"):   # two stems, each twice
        a, b = (rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(2))
        _save(tmp_path / "data" / "A" / "test" / rel, a)
        _save(tmp_path / "data" / "B" / "test" / rel.replace(".bmp", ".tif"), b)  # B pairs by stem and folder
        inputs[rel] = a
    # a.png and a.bmp in one A folder share a stem, which paired data cannot pair; aligned data
    # holds them as A|B files.
    for rel in ("a.png", "a.bmp"):
        (tmp_path / "data" / "A" / "test" / rel).unlink()
        (tmp_path / "data" / "B" / "test" / rel.replace(".bmp", ".tif")).unlink()
        _save(tmp_path / "aligned" / "test" / rel, np.concatenate([inputs[rel], inputs[rel]], axis=1))

    common = ["--checkpoints_dir", str(ck), "--name", "tiny", "--load_size", "32", "--crop_size", "32",
              "--num_threads", "0", "--gpu_ids", "-1"]
    assert test_driver.main(common + ["--dataroot", str(tmp_path / "data"), "--dataset_mode", "paired",
                                      "--results_dir", str(tmp_path / "res_paired")]) == 0
    assert test_driver.main(common + ["--dataroot", str(tmp_path / "aligned"),
                                      "--results_dir", str(tmp_path / "res_aligned")]) == 0

    for results, expected in (("res_paired", {"x": "sub1/x.png", "sub2_x": "sub2/x.png"}),
                              ("res_aligned", {"a": "a.bmp", "a_png": "a.png"})):   # sorted: a.bmp first
        folder = tmp_path / results / "tiny" / "test_latest"
        metrics = json.loads((folder / "metrics.json").read_text())
        assert sorted(metrics["images"]) == sorted(expected)
        for name, rel in expected.items():
            written = np.asarray(Image.open(folder / "images" / f"{name}_real_A.png"))
            np.testing.assert_array_equal(written, inputs[rel])   # each name holds its own input
        assert len(list((folder / "images").glob("*_fake_B.png"))) == 2


def test_load_iter_results_where_compare_reads_them(tiny_run: tuple[Path, Path], tmp_path: Path) -> None:
    data, ck = tiny_run
    ck_copy = tmp_path / "ck"
    for name in ("one", "two"):   # two runs, each with a save kept at 8 samples
        shutil.copytree(ck / "tiny", ck_copy / name)
        (ck_copy / name / "iter_8_net_G.pt").write_bytes((ck / "tiny" / "latest_net_G.pt").read_bytes())
        assert test_driver.main(["--dataroot", str(data), "--checkpoints_dir", str(ck_copy), "--name", name,
                                 "--load_size", "32", "--crop_size", "32", "--num_threads", "0", "--gpu_ids", "-1",
                                 "--results_dir", str(tmp_path / "res"), "--load_iter", "8"]) == 0
        assert (tmp_path / "res" / name / "test_latest_iter8" / "metrics.json").is_file()
    runs = [str(ck_copy / "one"), str(ck_copy / "two"), "--results_dir", str(tmp_path / "res")]
    out = tmp_path / "cmp.html"
    assert compare_driver.main(runs + ["--load_iter", "8", "--out", str(out)]) == 0
    assert compare_driver.main(runs + ["--out", str(tmp_path / "none.html")]) == 1   # no test_latest results
