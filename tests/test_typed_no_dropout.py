"""A typed --no_dropout at inference keeps the checkpoint's network and turns its dropout off: a
ResNet trained with dropout (whose residual blocks hold a Dropout module, shifting the keys of
the layers after it) loads, and gives exactly what --dropout off gives."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import test as test_driver
import translate as translate_driver
from tests.pipeline_helpers import train_tiny_run


@pytest.fixture(scope="module")
def resnet_with_dropout(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return train_tiny_run(tmp_path_factory.mktemp("run"), test_images=2)   # resnet_6blocks, dropout on


def _fakes(folder: Path) -> dict[str, np.ndarray]:
    return {p.name: np.asarray(Image.open(p)) for p in sorted(folder.rglob("*_fake_B.png"))}


def test_test_py(resnet_with_dropout: tuple[Path, Path], tmp_path: Path) -> None:
    data, ck = resnet_with_dropout
    args = ["--dataroot", str(data), "--checkpoints_dir", str(ck), "--name", "tiny", "--load_size", "32",
            "--crop_size", "32", "--num_threads", "0", "--gpu_ids", "-1"]
    assert test_driver.main(args + ["--no_dropout", "--results_dir", str(tmp_path / "typed")]) == 0
    assert test_driver.main(args + ["--dropout", "off", "--results_dir", str(tmp_path / "off")]) == 0
    typed, off = _fakes(tmp_path / "typed"), _fakes(tmp_path / "off")
    assert len(typed) == 2 and typed.keys() == off.keys()
    for name in typed:
        np.testing.assert_array_equal(typed[name], off[name])


def test_translate_py(resnet_with_dropout: tuple[Path, Path], tmp_path: Path) -> None:
    data, ck = resnet_with_dropout
    image = tmp_path / "in" / "x.png"
    image.parent.mkdir()
    Image.open(next((data / "test").iterdir())).crop((0, 0, 32, 32)).save(image)
    args = ["--checkpoints_dir", str(ck), "--name", "tiny", "--input", str(image), "--gpu_ids", "-1"]
    assert translate_driver.main(args + ["--no_dropout", "--output", str(tmp_path / "typed")]) == 0
    assert translate_driver.main(args + ["--dropout", "off", "--output", str(tmp_path / "off")]) == 0
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "typed" / "x.png")),
                                  np.asarray(Image.open(tmp_path / "off" / "x.png")))
