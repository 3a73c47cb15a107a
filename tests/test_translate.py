"""translate.py: any size and mode in, same size and name out; options from the checkpoint;
reference files with the reference's flags; bad input as one line."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import test as test_driver
import translate
from data.transforms import to_signed_unit
from models.networks import GENERATORS, build_generator
from inference.translator import plan_for
from tests.test_reference_compat import make_reference_state, randomize
from engine.checkpoint import write_generator
from data.color import rgb_to_lab
from data.image_io import DEFAULT_MAX_IMAGE_PIXELS, set_max_image_pixels
from reporting.images import to_uint8

NET = dict(netG="resnet_6blocks", ngf=4, norm="instance", input_nc=3, output_nc=3, no_dropout=True)


def save_ours(exp_dir: Path, seed: int = 0, **overrides) -> torch.nn.Module:
    """A generator-only checkpoint as train.py writes it (weights + options)."""
    options = {**NET, "model": "pix2pix", "direction": "AtoB", **overrides}
    spec = GENERATORS.from_options(options)
    net = randomize(spec.build(), seed)
    write_generator(exp_dir / "latest_net_G.pt", net.state_dict(), spec.as_dict(), options)
    return net


def rng_image(size: tuple[int, int], mode: str, seed: int = 0) -> Image.Image:
    w, h = size
    channels = {"RGB": 3, "RGBA": 4, "L": 1, "LA": 2}[mode]
    data = np.random.default_rng(seed).integers(0, 256, (h, w, channels), dtype=np.uint8)
    return Image.fromarray(data[..., 0] if channels == 1 else data, mode=mode)


def run(tmp: Path, *args: str) -> int:
    return translate.main(["--checkpoints_dir", str(tmp / "ck"), "--gpu_ids", "-1", *args])


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    rng_image((300, 200), "RGB").save(folder / "wide.jpg")
    rng_image((45, 70), "L", 1).save(folder / "gray.png")
    rng_image((64, 48), "RGBA", 2).save(folder / "sub" / "alpha.png")
    rng_image((33, 31), "RGB", 3).convert("P").save(folder / "palette.bmp")
    (folder / "notes.txt").write_text("not an image")
    return folder


@pytest.mark.parametrize("net_g,fit", [("resnet_6blocks", "pad"), ("unet_128", "resize"), ("unet_128", "reflect")])
def test_any_size_and_mode_gives_same_size_and_name(tmp_path: Path, inputs: Path, net_g: str, fit: str) -> None:
    save_ours(tmp_path / "ck" / "exp", netG=net_g, ngf=2)
    out = tmp_path / "out"
    # No network flags: netG, ngf, norm and channels come from the checkpoint.
    assert run(tmp_path, "--name", "exp", "--input", str(inputs), "--output", str(out), "--fit", fit) == 0
    expected = {"wide.png": (300, 200), "gray.png": (45, 70), "sub/alpha.png": (64, 48), "palette.png": (33, 31)}
    written = {str(p.relative_to(out)): p for p in out.rglob("*.png")}
    assert set(written) == set(expected)
    for name, size in expected.items():
        with Image.open(written[name]) as img:
            assert img.size == size and img.mode == "RGB"


def test_gray_model_writes_gray_and_single_file_input(tmp_path: Path, inputs: Path) -> None:
    save_ours(tmp_path / "ck" / "exp", input_nc=1, output_nc=1)
    out = tmp_path / "out"
    assert run(tmp_path, "--name", "exp", "--input", str(inputs / "sub" / "alpha.png"), "--output", str(out),
               "--fit", "pad") == 0
    with Image.open(out / "alpha.png") as img:
        assert img.mode == "L" and img.size == (64, 48)


def test_output_equals_the_network_on_a_valid_size(tmp_path: Path) -> None:
    net = save_ours(tmp_path / "ck" / "exp").eval()
    image = rng_image((32, 28), "RGB", 5)
    image.save(tmp_path / "x.png")
    assert run(tmp_path, "--name", "exp", "--input", str(tmp_path / "x.png"), "--output", str(tmp_path / "o"),
               "--eval") == 0
    with torch.no_grad():
        x = to_signed_unit(torch.from_numpy(np.array(image)).permute(2, 0, 1)).unsqueeze(0)
        expected = to_uint8(net(x)[0])
    assert np.array_equal(np.asarray(Image.open(tmp_path / "o" / "x.png")), expected)


def test_fit_plans() -> None:
    assert plan_for(200, 300, 128, "resize", None).resize_to == (256, 256)
    assert plan_for(200, 300, 128, "pad", None).pad == (56, 84)
    assert plan_for(200, 300, 128, "reflect", None).reflect   # the padding itself: data/padding.py
    assert plan_for(200, 300, 4, "resize", 256).resize_to == (256, 256)
    with pytest.raises(ValueError, match="--load_size 300"):
        plan_for(200, 300, 256, "resize", 300)


def test_colorization_checkpoint_keeps_the_input_lightness(tmp_path: Path, inputs: Path) -> None:
    save_ours(tmp_path / "ck" / "color", model="colorization", input_nc=1, output_nc=2)
    out = tmp_path / "out"
    assert run(tmp_path, "--name", "color", "--input", str(inputs / "wide.jpg"), "--output", str(out)) == 0
    with Image.open(out / "wide.png") as result, Image.open(inputs / "wide.jpg") as source:
        assert result.mode == "RGB" and result.size == source.size
        to_l = lambda im: rgb_to_lab(torch.from_numpy(np.array(im.convert("RGB"))).permute(2, 0, 1) / 255.0)[0]  # noqa: E731
        # Colour is added, lightness kept (up to gamut clipping and 8-bit rounding).
        assert (to_l(result) - to_l(source)).abs().median() < 2.0


# -- reference checkpoints ------------------------------------------------------------------------
def save_reference(exp_dir: Path) -> torch.nn.Module:
    net = randomize(build_generator("resnet_6blocks", input_nc=3, output_nc=3, ngf=4, norm="instance",
                                    dropout=False), 7)
    exp_dir.mkdir(parents=True)
    torch.save(make_reference_state(net, "resnet_6blocks", 6, "instance"), exp_dir / "latest_net_G.pth")
    return net


def test_reference_file_with_reference_flags_matches_test_py(tmp_path: Path) -> None:
    net = save_reference(tmp_path / "ck" / "ref")
    data = tmp_path / "data"
    data.mkdir()
    rng_image((32, 32), "RGB", 8).save(data / "a.png")
    flags = ["--netG", "resnet_6blocks", "--ngf", "4", "--norm", "instance", "--no_dropout"]
    assert run(tmp_path, "--name", "ref", "--input", str(data), "--output", str(tmp_path / "o"),
               "--load_size", "32", *flags) == 0
    assert test_driver.main(["--dataroot", str(data), "--name", "ref", "--checkpoints_dir", str(tmp_path / "ck"),
                             "--model", "test", "--dataset_mode", "single", "--load_size", "32", "--crop_size", "32",
                             "--results_dir", str(tmp_path / "r"), "--gpu_ids", "-1", "--num_threads", "0",
                             *flags]) == 0
    ours = np.asarray(Image.open(tmp_path / "o" / "a.png"))
    pages = np.asarray(Image.open(tmp_path / "r" / "ref" / "test_latest" / "images" / "a_fake_B.png"))
    with torch.no_grad():
        x = to_signed_unit(torch.from_numpy(np.array(Image.open(data / "a.png"))).permute(2, 0, 1))
        expected = to_uint8(net(x.unsqueeze(0))[0])
    assert np.array_equal(ours, expected) and np.array_equal(pages, expected)


def test_reference_file_with_wrong_flags_names_the_option(tmp_path: Path, inputs: Path,
                                                          capsys: pytest.CaptureFixture) -> None:
    save_reference(tmp_path / "ck" / "ref")
    rc = run(tmp_path, "--name", "ref", "--input", str(inputs), "--output", str(tmp_path / "o"),
             "--netG", "resnet_9blocks", "--ngf", "4", "--norm", "instance")
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1 and "Traceback" not in err
    assert "latest_net_G.pth" in err and "--netG resnet_6blocks" in err


# -- bad input -------------------------------------------------------------------------------------
@pytest.mark.parametrize("case,needle", [
    ("missing_input", "--input does not exist"),
    ("no_checkpoint", "no generator checkpoint"),
    ("broken_image", "cannot read image"),   # found by the header check, before any result is written
    ("contradicting_flag", "--ngf"),
])
def test_bad_input_is_one_line(tmp_path: Path, inputs: Path, capsys: pytest.CaptureFixture, case: str,
                               needle: str) -> None:
    save_ours(tmp_path / "ck" / "exp")
    args = ["--name", "exp", "--input", str(inputs), "--output", str(tmp_path / "o")]
    if case == "missing_input":
        args[3] = str(tmp_path / "nowhere")
    elif case == "no_checkpoint":
        args[1] = "nothing_here"
    elif case == "broken_image":
        (inputs / "a_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    elif case == "contradicting_flag":
        args += ["--ngf", "8"]
    assert run(tmp_path, *args) == 1
    err = capsys.readouterr().err
    assert err.startswith("translate.py: error: ") and err.count("\n") == 1 and needle in err


def test_skip_bad_images_goes_on(tmp_path: Path, inputs: Path) -> None:
    save_ours(tmp_path / "ck" / "exp")
    folder = inputs / "sub"
    (folder / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "o"
    assert run(tmp_path, "--name", "exp", "--input", str(folder), "--output", str(out), "--skip_bad_images") == 0
    assert (out / "alpha.png").is_file() and not (out / "broken.png").exists()


def test_unknown_choice_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run(tmp_path, "--name", "x", "--input", "a", "--output", "b", "--fit", "stretch")
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_option_system_is_shared_with_test_serve_and_export(capsys) -> None:
    """translate.py, serve.py and export.py parse with options/inference.py: per-model defaults and
    the GPU check of options/parse.py, and test.py's norm-behaviour group (one definition)."""
    import export
    import serve
    from options.parse import build_parser

    opt = translate.parse(["--model", "colorization", "--name", "x", "--input", "i", "--output", "o",
                           "--gpu_ids", "-1"])
    assert (opt.input_nc, opt.output_nc) == (1, 2)   # MODEL_DEFAULTS["colorization"]
    assert opt.explicit == ["gpu_ids", "input", "model", "name", "output"]
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit) as stop:
            translate.parse(["--name", "x", "--input", "i", "--output", "o", "--gpu_ids", "0"])
        assert stop.value.code == 2
        assert "CUDA is not available" in capsys.readouterr().err

    def behaviour_flags(parser) -> dict[str, object]:
        group = next(g for g in parser._action_groups if g.title == "norm and dropout behaviour at test time")
        return {a.dest: (a.default, a.choices) for a in group._group_actions}

    from options.inference import build_inference_parser
    shared = behaviour_flags(build_inference_parser("translate.py", ""))
    assert {"eval", "bn_eval", "dropout"} <= set(shared)
    test_flags = behaviour_flags(build_parser(is_train=False))
    assert {k: v for k, v in test_flags.items() if k in shared and k != "bn_eval"} == \
        {k: v for k, v in shared.items() if k != "bn_eval"}
    assert test_flags["bn_eval"][1] == [*shared["bn_eval"][1], "precise"]   # test.py has training data
    serve_opt, export_opt = serve.parse(["--name", "x", "--eval"]), export.parse(["--name", "x"])
    assert (serve_opt.eval, serve_opt.bn_eval, serve_opt.dropout) == (True, "running", None)
    assert (export_opt.eval, export_opt.bn_eval, export_opt.dropout) == (True, "running", "off")


def test_a_checkpoint_trained_with_pad_is_fitted_by_reflect_unless_fit_is_typed(tmp_path: Path) -> None:
    """A 72x45 image: reflect pads it to 72x48; resize would resample it to 72x44 and back."""
    rng_image((72, 45), "RGB", 4).save(tmp_path / "odd.png")
    save_ours(tmp_path / "ck" / "padded", preprocess="pad")
    save_ours(tmp_path / "ck" / "cropped", preprocess="resize_and_crop")
    runs = {"padded": [], "padded_reflect": ["--fit", "reflect"], "padded_resize": ["--fit", "resize"],
            "cropped": [], "cropped_resize": ["--fit", "resize"]}
    written = {}
    for out, fit in runs.items():
        assert run(tmp_path, "--name", out.split("_")[0], "--input", str(tmp_path / "odd.png"),
                   "--output", str(tmp_path / out), *fit) == 0
        written[out] = np.asarray(Image.open(tmp_path / out / "odd.png"))
    assert written["padded"].shape == (45, 72, 3)
    assert np.array_equal(written["padded"], written["padded_reflect"])
    assert not np.array_equal(written["padded_resize"], written["padded_reflect"])
    assert np.array_equal(written["cropped"], written["cropped_resize"])   # other training: resize, as before


def test_onnx_metadata_carries_the_fit_and_older_files_resize() -> None:
    from inference.onnx_model import OnnxError, OnnxSpec

    spec = OnnxSpec(1, 1, 4, "rgb", "norm layers: eval", "resnet_6blocks", "reflect")
    meta = spec.metadata()
    assert meta["fit"] == "reflect" and OnnxSpec.from_metadata(meta, Path("g.onnx")) == spec
    del meta["fit"]   # written before the fit was recorded
    assert OnnxSpec.from_metadata(meta, Path("g.onnx")).fit == "resize"
    with pytest.raises(OnnxError, match=r"^g\.onnx: broken pix2pix metadata \(fit 'stretch' is none of"):
        OnnxSpec.from_metadata({**meta, "fit": "stretch"}, Path("g.onnx"))


def test_max_image_pixels_is_translate_py_s_too(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The refusal of a too-large image names --max_image_pixels: translate.py takes it too
    (a 64 x 48 input against a limit of 3000 pixels; 0 removes the limit)."""
    save_ours(tmp_path / "ck" / "exp")
    rng_image((64, 48), "RGB").save(tmp_path / "big.png")
    args = ["--name", "exp", "--input", str(tmp_path / "big.png"), "--output", str(tmp_path / "o")]
    try:
        assert run(tmp_path, *args, "--max_image_pixels", "3000") == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "64 x 48 pixels is over the limit of 3000" in err and "--max_image_pixels" in err
        assert not (tmp_path / "o" / "big.png").exists()
        assert run(tmp_path, *args, "--max_image_pixels", "0") == 0
        assert Image.open(tmp_path / "o" / "big.png").size == (64, 48)
    finally:
        set_max_image_pixels(DEFAULT_MAX_IMAGE_PIXELS)   # Pillow's limit is per process
