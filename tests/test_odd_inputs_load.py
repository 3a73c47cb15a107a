"""Inputs that look bad but are a user's real files, and load: CMYK JPEGs (converted to RGB as
Pillow converts them) and file names that are not valid UTF-8 (bytes from another system's
encoding), through train.py, test.py and translate.py."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import test as test_script
import train as train_script
import translate
from data import DataConfig, create_dataset
from data.image_ops import pil_to_uint8_tensor
from data.transforms import to_signed_unit
from tests.test_ddp import REPO, train_args, write_pairs
from tests.test_translate import save_ours

LATIN1 = os.fsdecode(b"caf\xe9")    # 'café' written in Latin-1: not valid UTF-8
RESNET = dict(netG="resnet_6blocks", ngf=2, norm="instance", no_dropout=True)


def cmyk_jpeg(path: Path) -> None:
    coarse = np.random.default_rng(3).integers(0, 256, size=(4, 8, 4), dtype=np.uint8)
    Image.fromarray(coarse, mode="CMYK").resize((64, 32), Image.BILINEAR).save(path, quality=95)


def test_a_cmyk_jpeg_pair_gives_pillows_rgb(tmp_path: Path) -> None:
    (tmp_path / "train").mkdir()
    cmyk_jpeg(tmp_path / "train" / "pair.jpg")
    with Image.open(tmp_path / "train" / "pair.jpg") as stored:
        assert stored.mode == "CMYK"
        rgb = stored.convert("RGB")   # the oracle: Pillow's own conversion
    dataset = create_dataset("aligned", DataConfig(tmp_path, preprocess="none", no_flip=True))
    item = dataset[0]
    for half, box in (("A", (0, 0, 32, 32)), ("B", (32, 0, 64, 32))):
        assert torch.equal(item[half], to_signed_unit(pil_to_uint8_tensor(rgb.crop(box))))


def test_translate_py_gives_a_cmyk_jpeg_the_result_of_its_rgb(tmp_path: Path) -> None:
    save_ours(tmp_path / "ck" / "exp", **RESNET)
    (tmp_path / "in").mkdir()
    cmyk_jpeg(tmp_path / "in" / "cmyk.jpg")
    with Image.open(tmp_path / "in" / "cmyk.jpg") as stored:
        stored.convert("RGB").save(tmp_path / "in" / "rgb.png")
    assert translate.main(["--name", "exp", "--checkpoints_dir", str(tmp_path / "ck"), "--gpu_ids", "-1",
                           "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out")]) == 0
    with Image.open(tmp_path / "out" / "cmyk.png") as a, Image.open(tmp_path / "out" / "rgb.png") as b:
        assert a.mode == "RGB" and np.array_equal(np.asarray(a), np.asarray(b))


@pytest.fixture
def latin1_pairs(tmp_path: Path) -> Path:
    data = write_pairs(tmp_path / "pairs")
    for split in ("train", "test"):
        os.rename(data / split / "000.png", data / split / f"{LATIN1}.png")
    return data


def test_names_that_are_not_utf8_train_test_and_translate(latin1_pairs: Path, tmp_path: Path, capsys) -> None:
    ckpt = tmp_path / "ck"
    assert train_script.main(train_args(latin1_pairs, ckpt, "exp", "--batch_size", "2", "--max_steps", "1")) == 0
    assert test_script.main(["--dataroot", str(latin1_pairs), "--checkpoints_dir", str(ckpt), "--name", "exp",
                             "--gpu_ids", "-1", "--num_threads", "0", "--preprocess", "none",
                             "--results_dir", str(tmp_path / "results")]) == 0
    page = tmp_path / "results" / "exp" / "test_latest"
    assert (page / "images" / f"{LATIN1}_fake_B.png").is_file()   # the same bytes as the input's name
    html = (page / "index.html").read_text(encoding="utf-8")
    assert 'src="images/caf%E9_fake_B.png"' in html and r"caf\xe9" in html   # the link as on disk, the name shown
    assert translate.main(["--name", "exp", "--checkpoints_dir", str(ckpt), "--gpu_ids", "-1",
                           "--input", str(latin1_pairs / "test"), "--output", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / f"{LATIN1}.png").is_file()
    assert "Traceback" not in capsys.readouterr().err


def test_a_bad_file_whose_name_is_not_utf8_is_named_in_one_line(latin1_pairs: Path, tmp_path: Path) -> None:
    # A real process: its stderr escapes what is not UTF-8 (pytest's capture would not).
    (latin1_pairs / "train" / f"{LATIN1}.png").write_bytes(b"")
    done = subprocess.run([sys.executable, str(REPO / "train.py"),
                           *train_args(latin1_pairs, tmp_path / "ck", "exp", "--max_steps", "1")],
                          capture_output=True, cwd=tmp_path, timeout=300)
    err = done.stderr.decode("utf-8")   # strictly UTF-8: the odd byte comes out escaped, as Python's \udcNN
    assert done.returncode == 1 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert r"caf\udce9.png: empty (0-byte) image file" in err
    assert not (tmp_path / "ck" / "exp").exists()
