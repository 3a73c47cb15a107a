"""translate.py / export.py / test.py / serve.py refuse in one line what they cannot honour (audit F2, F3,
F7, F8, F9): an image smaller than the generator takes, options an ONNX file has frozen, a --model
that contradicts the checkpoint, a bad file found after results were written; colorization honours
--output_bits and 16-bit inputs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import tifffile
import torch
from PIL import Image
from skimage.color import rgb2lab

import export
import test as test_driver
import translate
from inference.generator import load_generator, translator_for
from inference.sketch_page import PageSettings, SketchHandler, build_page
from models.networks import GENERATORS
from tests.test_translate import rng_image, run, save_ours

RESNET = dict(netG="resnet_6blocks", ngf=4, norm="batch")
FACADES = Path(__file__).resolve().parent / "fixtures" / "facades"
COLOR = dict(model="colorization", netG="resnet_6blocks", ngf=4, norm="batch", input_nc=1, output_nc=2)


def one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


@pytest.fixture(scope="module")
def resnet_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("onnx")
    save_ours(tmp / "ck" / "res", **RESNET)
    assert export.main(["--checkpoints_dir", str(tmp / "ck"), "--gpu_ids", "-1", "--name", "res",
                        "--output", str(tmp / "res.onnx")]) == 0
    return tmp / "res.onnx"


def test_the_oracle_resnet_takes_8_px_not_4() -> None:
    """Hand arithmetic: two stride-2 halvings leave 1 px of a 4 px side, which reflection padding
    (and batch statistics) cannot take; 8 px leave 2."""
    net = GENERATORS.from_options({**RESNET, "input_nc": 3, "output_nc": 3, "no_dropout": True}).build().train()
    with pytest.raises((RuntimeError, ValueError)):
        net(torch.zeros(1, 3, 4, 4))
    assert net(torch.zeros(1, 3, 8, 8)).shape == (1, 3, 8, 8)
    net.eval()
    with pytest.raises(RuntimeError):
        net(torch.zeros(1, 3, 8, 4))


@pytest.mark.parametrize("flags", [[], ["--eval"], ["--fit", "pad"], ["--load_size", "4"]])
def test_an_image_too_small_for_the_generator_is_one_line(tmp_path: Path, capsys, flags: list[str]) -> None:
    save_ours(tmp_path / "ck" / "res", **RESNET)
    rng_image((3, 3), "RGB").save(tmp_path / "t3.png")
    out = tmp_path / "out"
    assert run(tmp_path, "--name", "res", "--input", str(tmp_path / "t3.png"), "--output", str(out), *flags) == 1
    line = one_line(capsys)
    assert "t3.png: 3x3 px (fitted to 4x4 px by" in line and "sides of at least 8 px" in line, line
    assert not out.exists()
    # 8x8 goes through.
    rng_image((8, 8), "RGB").save(tmp_path / "t8.png")
    assert run(tmp_path, "--name", "res", "--input", str(tmp_path / "t8.png"), "--output", str(out), "--eval") == 0


def test_serve_shows_the_same_line_on_the_page(tmp_path: Path) -> None:
    import gradio as gr

    save_ours(tmp_path / "ck" / "res", **RESNET)
    opt = translate.parse(["--name", "res", "--checkpoints_dir", str(tmp_path / "ck"), "--gpu_ids", "-1",
                           "--input", "x", "--output", "y"])
    handler = SketchHandler(translator_for(load_generator(opt)), 0, 4096)
    settings = PageSettings(title="t", canvas_size=64, max_side=4096, on_button=True, max_queue=3, save_inputs=None)
    page, _ = build_page(handler, settings)
    respond = next(f.fn for f in page.fns.values() if getattr(f.fn, "__name__", "") == "respond")
    with pytest.raises(gr.Error) as shown:
        respond({"composite": rng_image((3, 3), "RGB")})
    assert "canvas: 3x3 px (fitted to 4x4 px by --fit resize)" in shown.value.message
    assert "at least 8 px" in shown.value.message


def test_test_py_refuses_a_crop_the_generator_cannot_take(tmp_path: Path, capsys) -> None:
    save_ours(tmp_path / "ck" / "res", **RESNET)
    base = ["--dataroot", str(FACADES), "--name", "res", "--checkpoints_dir", str(tmp_path / "ck"), "--gpu_ids",
            "-1", "--num_threads", "0", "--num_test", "1", "--results_dir", str(tmp_path / "r")]
    assert test_driver.main([*base, "--load_size", "4", "--crop_size", "4"]) == 1
    line = one_line(capsys)
    assert "is too small for --netG resnet_6blocks, which needs at least 8x8 px" in line, line
    assert not (tmp_path / "r").exists()


def test_onnx_metadata_records_the_smallest_side_and_translate_refuses_below(resnet_onnx: Path, tmp_path: Path,
                                                                           capsys) -> None:
    meta = {p.key: p.value for p in onnx.load(resnet_onnx).metadata_props}
    assert meta["pix2pix.min_side"] == "8" and meta["pix2pix.bn_eval"] == "running"
    # The text follows the file's --fit (resize here), not always the reflect padding.
    assert "at least 8: resize other sizes (bicubic)" in meta["pix2pix.preprocessing"]
    assert "reflection" not in meta["pix2pix.preprocessing"]
    rng_image((3, 3), "RGB").save(tmp_path / "t3.png")
    assert translate.main(["--onnx", str(resnet_onnx), "--input", str(tmp_path / "t3.png"),
                           "--output", str(tmp_path / "o")]) == 1
    assert "sides of at least 8 px" in one_line(capsys)


@pytest.mark.parametrize("flags,expected", [
    (["--eval", "--bn_eval", "batch"], "--bn_eval batch: {f} was exported with --bn_eval running"),
    (["--dropout", "on"], "--dropout on: {f} holds --netG resnet_6blocks"),
    (["--netG", "resnet_9blocks", "--norm", "instance"], "--netG, --norm: --onnx runs the network the file holds"),
    (["--name", "res", "--epoch", "7"], "--epoch, --name: --onnx runs the network the file holds"),
    (["--model", "colorization"], "--model: --onnx runs the network the file holds"),
])
def test_onnx_refuses_typed_options_it_cannot_honour(resnet_onnx: Path, tmp_path: Path, capsys, flags: list[str],
                                                     expected: str) -> None:
    rng_image((16, 16), "RGB").save(tmp_path / "a.png")
    out = tmp_path / "o"
    assert translate.main(["--onnx", str(resnet_onnx), "--input", str(tmp_path / "a.png"), "--output", str(out),
                           *flags]) == 1
    assert one_line(capsys).startswith(f"translate.py: error: {expected.format(f=resnet_onnx)}")
    assert not out.exists()
    # What the file froze may be typed.
    assert translate.main(["--onnx", str(resnet_onnx), "--input", str(tmp_path / "a.png"), "--output", str(out),
                           "--eval", "--bn_eval", "running", "--dropout", "off"]) == 0


def test_pix2pix_typed_on_a_colorization_checkpoint_is_the_same_line_everywhere(tmp_path: Path, capsys) -> None:
    save_ours(tmp_path / "ck" / "color", **COLOR)
    ck = ["--checkpoints_dir", str(tmp_path / "ck"), "--gpu_ids", "-1", "--name", "color", "--model", "pix2pix"]
    rng_image((16, 16), "RGB").save(tmp_path / "a.png")
    expected = (f"{tmp_path / 'ck' / 'color' / 'latest_net_G.pt'}: it was trained as --model colorization, so "
                "--model pix2pix cannot run it (its images are encoded differently): leave --model out")
    assert translate.main([*ck, "--input", str(tmp_path / "a.png"), "--output", str(tmp_path / "o")]) == 1
    assert one_line(capsys) == f"translate.py: error: {expected}"
    assert export.main([*ck, "--output", str(tmp_path / "c.onnx")]) == 1
    assert one_line(capsys) == f"export.py: error: {expected}"
    assert test_driver.main([*ck, "--dataroot", str(FACADES / "test"), "--num_threads", "0", "--num_test", "1",
                             "--load_size", "16", "--crop_size", "16", "--results_dir", str(tmp_path / "r")]) == 1
    assert one_line(capsys) == f"test.py: error: {expected}"
    assert not (tmp_path / "o").exists() and not (tmp_path / "c.onnx").exists()


def test_colorization_writes_16_bits_keeping_a_16_bit_lightness(tmp_path: Path) -> None:
    save_ours(tmp_path / "ck" / "color", **COLOR)
    gray = np.random.default_rng(0).integers(0, 65536, (12, 20), dtype=np.uint16)
    Image.fromarray(gray).save(tmp_path / "g16.png")
    rng_image((20, 12), "RGB").save(tmp_path / "c8.png")
    ck = ["--name", "color", "--eval", "--input"]
    assert run(tmp_path, *ck, str(tmp_path / "g16.png"), "--output", str(tmp_path / "auto")) == 0
    result = tifffile.imread(tmp_path / "auto" / "g16.tif")
    assert result.dtype == np.uint16 and result.shape == (12, 20, 3)
    # The oracle: scikit-image's Lab; the result keeps the input's lightness to 16-bit precision
    # (8-bit results are off by up to ~0.2 L units).
    # Where the colour is inside the sRGB gamut (a random generator's ab may be clipped there).
    lightness_in = rgb2lab(np.repeat((gray / 65535.0)[..., None], 3, axis=-1))[..., 0]
    inside = ((result > 0) & (result < 65535)).all(axis=-1)
    assert inside.sum() >= 40
    assert np.abs(rgb2lab(result / 65535.0)[..., 0] - lightness_in)[inside].max() < 0.02
    # --output_bits 16 on an 8-bit input: 16 bits, the 8-bit result's colours.
    assert run(tmp_path, *ck, str(tmp_path / "c8.png"), "--output", str(tmp_path / "o8")) == 0
    assert run(tmp_path, *ck, str(tmp_path / "c8.png"), "--output", str(tmp_path / "o16"), "--output_bits", "16") == 0
    wide = tifffile.imread(tmp_path / "o16" / "c8.tif")
    narrow = np.asarray(Image.open(tmp_path / "o8" / "c8.png"))
    assert wide.dtype == np.uint16 and np.abs(wide / 257.0 - narrow).max() <= 0.51


def test_a_bad_file_is_found_before_any_result_is_written(tmp_path: Path, capsys) -> None:
    save_ours(tmp_path / "ck" / "res", **RESNET)
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    out.mkdir()
    rng_image((16, 16), "RGB").save(folder / "a1.png")
    (folder / "d_empty.png").write_bytes(b"")
    (out / "a1.png").write_bytes(b"ORIGINAL")
    assert run(tmp_path, "--name", "res", "--input", str(folder), "--output", str(out)) == 1
    line = one_line(capsys)
    assert "d_empty.png: empty (0-byte) image file" in line and "--skip_bad_images" in line
    assert (out / "a1.png").read_bytes() == b"ORIGINAL"
    assert run(tmp_path, "--name", "res", "--input", str(folder), "--output", str(out), "--skip_bad_images") == 0
    assert Image.open(out / "a1.png").size == (16, 16)
