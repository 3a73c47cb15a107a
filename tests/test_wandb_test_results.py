"""test.py --use_wandb: one offline W&B run (job type test) holds the results table (a row per
image: its name, the written images, its metrics) and the means, read back with W&B's own reader
of the run file and from the table file it writes, against test.py's metrics.json and images."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import test as test_driver
from reporting.metrics import IMAGE, metric_names
from tests.pipeline_helpers import train_tiny_run
from tests.test_wandb import no_network, run_records   # noqa: F401 - the fixture keeps W&B offline


def test_results_table_and_means(tmp_path: Path) -> None:
    data, ck = train_tiny_run(tmp_path / "run", test_images=3)
    results = tmp_path / "res"
    assert test_driver.main(["--dataroot", str(data), "--checkpoints_dir", str(ck), "--name", "tiny",
                             "--load_size", "32", "--crop_size", "32", "--num_threads", "0", "--gpu_ids", "-1",
                             "--results_dir", str(results), "--use_wandb",
                             "--wandb_project_name", "ref_spelling"]) == 0   # the reference's flag
    metrics = json.loads((results / "tiny" / "test_latest" / "metrics.json").read_text())

    run_dirs = list((ck / "tiny" / "wandb").glob("offline-run-*"))
    assert len(run_dirs) == 1, run_dirs
    records = run_records(run_dirs[0])
    run = next(r["run"] for r in records if r["type"] == "run")
    assert run["display_name"] == "tiny" and run["project"] == "ref_spelling" and run["job_type"] == "test"
    history = [r["history"]["item"] for r in records if r["type"] == "history"]
    assert len(history) == 1
    for name, value in metrics["mean"].items():
        assert history[0][f"test/{name}"] == pytest.approx(value)
    assert history[0]["test/results.nrows"] == 3

    table = json.loads((run_dirs[0] / "files" / history[0]["test/results.path"]).read_text())
    assert table["columns"] == ["image", "real_A", "fake_B", "real_B", *metric_names(IMAGE)]
    rows = {row[0]: row for row in table["data"]}
    assert rows.keys() == metrics["images"].keys()
    for name, row in rows.items():
        assert row[4:] == pytest.approx([metrics["images"][name][m] for m in metric_names(IMAGE)])

    # The table's images are staged by W&B as PNG files: each written result is among them, pixel for pixel.
    staged = [np.asarray(Image.open(p)) for p in Path(tmp_path / "wandb_home").rglob("*")
              if p.is_file() and p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"]
    for written in (results / "tiny" / "test_latest" / "images").glob("*.png"):
        pixels = np.asarray(Image.open(written))
        assert any(s.shape == pixels.shape and np.array_equal(s, pixels) for s in staged), written.name


def test_shown_pixels_of_16_bit_and_many_channel_results(tmp_path: Path) -> None:
    import tifffile

    from data.pixels import read_pixels
    from reporting.wandb_results import shown_pixels

    gray = np.array([[0, 257, 65535], [128, 385, 40000]], dtype=np.uint16)
    Image.fromarray(gray).save(tmp_path / "g.png")
    np.testing.assert_array_equal(shown_pixels(tmp_path / "g.png", read_pixels), np.round(gray / 257).astype(np.uint8))
    four = np.arange(2 * 3 * 4, dtype=np.uint16).reshape(2, 3, 4) * 2000
    tifffile.imwrite(tmp_path / "f.tif", four)
    np.testing.assert_array_equal(shown_pixels(tmp_path / "f.tif", read_pixels), np.round(four[:, :, :3] / 257).astype(np.uint8))
