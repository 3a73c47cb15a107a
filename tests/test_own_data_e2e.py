"""Own data as it is, end to end: folders A/train, B/train (+ test) of 16-bit one-channel TIFFs
of an odd size (72x45) train with --dataset_mode paired --preprocess pad, and test.py,
translate.py (torch and ONNX) write 72x45 16-bit results, with no preparation step."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

import test as test_driver
import train as train_driver
import translate as translate_driver
from data.pixels import read_pixels

HEIGHT, WIDTH = 45, 72


def make_folders(root: Path, sizes: dict[str, list[tuple[int, int]]]) -> Path:
    """A/<phase>/i.tif and B/<phase>/i.tif; B is the negative of A, with a smooth gradient."""
    rng = np.random.default_rng(0)
    for phase, shapes in sizes.items():
        for i, (h, w) in enumerate(shapes):
            yy, xx = np.mgrid[0:h, 0:w]
            a = (xx * 60000 // w + yy * 5000 // h + rng.integers(0, 500)).astype(np.uint16)
            for side, image in (("A", a), ("B", 65535 - a)):
                (root / side / phase).mkdir(parents=True, exist_ok=True)
                tifffile.imwrite(root / side / phase / f"scan{i}.tif", image)
    return root


def args(data: Path, ck: Path) -> list[str]:
    return ["--dataroot", str(data), "--checkpoints_dir", str(ck), "--name", "own", "--dataset_mode", "paired",
            "--preprocess", "pad", "--input_nc", "1", "--output_nc", "1", "--netG", "resnet_6blocks",
            "--ngf", "4", "--ndf", "4", "--num_threads", "0", "--gpu_ids", "-1"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("own")
    # Mixed sizes with batch 3: batches are grouped by size instead of failing in the collate step.
    data = make_folders(root / "data", {"train": [(HEIGHT, WIDTH), (HEIGHT, WIDTH), (37, 50), (37, 50), (37, 50)],
                                        "test": [(HEIGHT, WIDTH), (HEIGHT, WIDTH)]})
    assert train_driver.main(args(data, root / "ck") + ["--batch_size", "3", "--max_steps", "3", "--display_id", "0"]) == 0
    return data, root / "ck"


def test_test_py_writes_16_bit_results_at_the_stored_size(trained: tuple[Path, Path], tmp_path: Path) -> None:
    data, ck = trained
    assert test_driver.main(args(data, ck) + ["--results_dir", str(tmp_path), "--batch_size", "2"]) == 0
    images = tmp_path / "own" / "test_latest" / "images"
    for name in ("real_A", "fake_B", "real_B"):
        written = Image.open(images / f"scan0_{name}.png")
        assert written.mode.startswith("I;16") and written.size == (WIDTH, HEIGHT)
    # real_A as written is the input file, sample for sample: no 8-bit rounding, no resampling.
    assert np.array_equal(np.asarray(Image.open(images / "scan1_real_A.png")),
                          tifffile.imread(data / "A" / "test" / "scan1.tif"))
    assert test_driver.main(args(data, ck) + ["--results_dir", str(tmp_path / "8"), "--output_bits", "8"]) == 0
    assert Image.open(tmp_path / "8" / "own" / "test_latest" / "images" / "scan0_fake_B.png").mode == "L"


def test_translate_py_writes_16_bit_at_the_input_size(trained: tuple[Path, Path], tmp_path: Path) -> None:
    data, ck = trained
    written = {}
    # No --fit: a checkpoint trained with --preprocess pad is fitted as --fit reflect fits it.
    for fit in ([], ["--fit", "reflect"], ["--fit", "resize"]):
        out = tmp_path / (fit[-1] if fit else "auto")
        assert translate_driver.main(["--name", "own", "--checkpoints_dir", str(ck), "--input",
                                      str(data / "A" / "test"), "--output", str(out), "--gpu_ids", "-1", *fit]) == 0
        written[out.name] = np.asarray(Image.open(out / "scan0.png"))
    result = Image.open(tmp_path / "auto" / "scan0.png")
    assert result.mode.startswith("I;16") and result.size == (WIDTH, HEIGHT)
    assert len(np.unique(np.asarray(result))) > 256   # more levels than 8 bits hold
    assert np.array_equal(written["auto"], written["reflect"])
    assert not np.array_equal(written["resize"], written["reflect"])   # a typed --fit still wins


def test_test_py_pads_by_itself_for_a_checkpoint_trained_with_pad(trained: tuple[Path, Path], tmp_path: Path) -> None:
    data, ck = trained
    plain = [a for a in args(data, ck) if a not in ("--preprocess", "pad")]
    assert test_driver.main([*plain, "--results_dir", str(tmp_path / "auto")]) == 0
    assert test_driver.main([*args(data, ck), "--results_dir", str(tmp_path / "typed")]) == 0
    for name in ("scan0_fake_B.png", "scan1_fake_B.png"):
        auto, padded = (np.asarray(Image.open(tmp_path / run / "own" / "test_latest" / "images" / name))
                        for run in ("auto", "typed"))
        assert auto.shape == (HEIGHT, WIDTH) and np.array_equal(auto, padded)


def test_onnx_export_translates_an_odd_size_like_torch(trained: tuple[Path, Path], tmp_path: Path) -> None:
    import export as export_driver
    from inference.generator import load_generator, translator_for
    from inference.onnx_model import onnx_translator

    data, ck = trained
    onnx_file = tmp_path / "g.onnx"
    assert export_driver.main(["--name", "own", "--checkpoints_dir", str(ck), "--output", str(onnx_file),
                               "--gpu_ids", "-1"]) == 0
    pixels = read_pixels(data / "A" / "test" / "scan0.tif", 1)
    via_onnx = onnx_translator(onnx_file, fit="reflect").run(pixels)
    opt = translate_driver.parse(["--name", "own", "--checkpoints_dir", str(ck), "--input", "x", "--output", "y",
                                  "--gpu_ids", "-1", "--eval", "--dropout", "off"])
    via_torch = translator_for(load_generator(opt), fit="reflect").run(pixels)
    assert via_onnx.shape == (1, HEIGHT, WIDTH) == via_torch.shape
    assert torch.allclose(via_onnx, via_torch, atol=1e-4)
    assert onnx_translator(onnx_file).fit == "reflect"   # recorded in the file: trained with --preprocess pad
    written = {}
    for fit in ([], ["--fit", "reflect"]):
        out = tmp_path / (fit[-1] if fit else "auto")
        assert translate_driver.main(["--onnx", str(onnx_file), "--input", str(data / "A" / "test"), "--output",
                                      str(out), *fit]) == 0
        written[out.name] = np.asarray(Image.open(out / "scan0.png"))
    assert written["auto"].shape == (HEIGHT, WIDTH) and np.array_equal(written["auto"], written["reflect"])


def test_mixed_size_training_resumes_mid_epoch_bit_identically(trained: tuple[Path, Path], tmp_path: Path) -> None:
    from tests.test_faults import assert_same_training, weights

    data, _ = trained
    # 5 images in two padded sizes, batch 2: batches of 2 + (2, 1) -> 3 steps an epoch, 2 epochs.
    common = [*args(data, tmp_path), "--batch_size", "2", "--n_epochs", "2", "--n_epochs_decay", "0", "--amp", "none",
              "--display_id", "0", "--no_html", "--save_latest_freq", "2", "--save_epoch_freq", "1"]
    assert train_driver.main([*common, "--name", "full"]) == 0
    assert train_driver.main([*common, "--name", "cut", "--max_steps", "2"]) == 0   # stops inside epoch 1
    assert train_driver.main([*common, "--name", "cut", "--continue_train"]) == 0
    assert_same_training(weights(tmp_path / "cut" / "latest.pt"), weights(tmp_path / "full" / "latest.pt"))


def test_two_ranks_train_on_mixed_sizes(trained: tuple[Path, Path], tmp_path: Path) -> None:
    # Each rank's step holds one size, the sizes of the two ranks' steps may differ: DDP only
    # averages gradients, whose shapes are the weights'.
    data, _ = trained
    argv = [*args(data, tmp_path), "--name", "ddp", "--batch_size", "2", "--max_steps", "2", "--display_id", "0",
            "--no_html", "--amp", "none", "--nproc", "2"]
    assert train_driver.main(argv) == 0
    assert torch.load(tmp_path / "ddp" / "latest.pt", weights_only=True)["state"]["step"] == 2


def test_bad_inputs_of_test_and_translate_are_one_line(trained: tuple[Path, Path], tmp_path: Path,
                                                        capsys: pytest.CaptureFixture) -> None:
    data, ck = trained
    tifffile.imwrite(tmp_path / "five.tif", np.zeros((9, 8, 5), np.uint16), photometric="minisblack",
                     planarconfig="contig")
    assert translate_driver.main(["--name", "own", "--checkpoints_dir", str(ck), "--input", str(tmp_path / "five.tif"),
                                  "--output", str(tmp_path / "out"), "--gpu_ids", "-1"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [f"translate.py: error: {tmp_path / 'five.tif'}: holds 5 channel(s), but --input_nc is 1"]
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    assert test_driver.main(args(data, ck) + ["--phase", "val", "--results_dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no A folder for phase 'val'" in err
