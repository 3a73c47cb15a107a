"""test.py --batch_size: a result never depends on which images share its batch. Under the
paper's test mode (batch norm with batch statistics) every image runs alone, as the
reference's test.py runs them; where no norm layer pools over the batch, batches are kept."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import test as test_driver
from models.networks import build_generator
from inference.split_inference import batch_size_for
from inference.translator import set_inference_behaviour
from tests.pipeline_helpers import train_tiny_run


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return train_tiny_run(tmp_path_factory.mktemp("run"), test_images=4)


def _fakes(folder: Path) -> dict[str, np.ndarray]:
    return {p.name: np.asarray(Image.open(p)) for p in sorted((folder / "images").glob("*_fake_B.png"))}


def test_batch_statistics_run_each_image_alone(tiny_run: tuple[Path, Path], tmp_path: Path) -> None:
    data, ck = tiny_run
    args = ["--dataroot", str(data), "--checkpoints_dir", str(ck), "--name", "tiny", "--load_size", "32",
            "--crop_size", "32", "--num_threads", "0", "--gpu_ids", "-1", "--dropout", "off"]
    assert test_driver.main(args + ["--results_dir", str(tmp_path / "one")]) == 0
    assert test_driver.main(args + ["--results_dir", str(tmp_path / "four"), "--batch_size", "4"]) == 0
    alone, typed = _fakes(tmp_path / "one" / "tiny" / "test_latest"), _fakes(tmp_path / "four" / "tiny" / "test_latest")
    assert len(alone) == 4 and alone.keys() == typed.keys()
    for name in alone:
        np.testing.assert_array_equal(typed[name], alone[name])


@pytest.mark.parametrize("norm, eval_mode, bn_eval, expected", [
    ("batch", False, "running", 1),      # the paper's mode: batch statistics
    ("batch", True, "running", 4),       # --eval: running statistics, per image
    ("batch", True, "batch", 1),         # --eval --bn_eval batch: batch statistics again
    ("instance", False, "running", 4),   # per-image statistics in any mode
    ("none", False, "running", 4),
])
def test_batch_size_kept_where_no_layer_pools(norm: str, eval_mode: bool, bn_eval: str, expected: int) -> None:
    net = build_generator("unet_128", input_nc=3, output_nc=3, ngf=2, norm=norm, dropout=False)
    set_inference_behaviour(net, eval_mode, bn_eval, None)
    assert batch_size_for(4, net) == expected
