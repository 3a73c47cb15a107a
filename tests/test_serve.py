"""serve.py without a browser: one-line errors (missing checkpoint, port in use), inputs over
4096 px refused, the page's defaults (loopback, no share link, bounded queue), per-request
seeding, and colorization models (a gray photo in, colour out, as translate.py gives it)."""
from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import serve
import translate
from inference.generator import load_generator, translator_for
from inference.sketch_page import InputRefused, PageSettings, SketchHandler, build_page, check_upload
from tests.test_translate import save_ours

FACADE = Path(__file__).resolve().parent / "fixtures" / "facades" / "test" / "1.jpg"
UNET = dict(netG="unet_256", ngf=4, norm="batch", no_dropout=False)


def handler_for(tmp: Path, name: str, max_side: int = 4096) -> SketchHandler:
    opt = serve.parse(["--name", name, "--checkpoints_dir", str(tmp / "ck"), "--gpu_ids", "-1"])
    return SketchHandler(translator_for(load_generator(opt)), opt.seed, max_side)


def test_missing_checkpoint_and_busy_port_are_one_line(tmp_path: Path, capsys) -> None:
    assert serve.main(["--name", "nothing", "--checkpoints_dir", str(tmp_path), "--gpu_ids", "-1",
                       "--port", "65000"]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("serve.py: error:") and "no generator checkpoint" in err

    save_ours(tmp_path / "ck" / "exp", **UNET)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert serve.main(["--name", "exp", "--checkpoints_dir", str(tmp_path / "ck"), "--gpu_ids", "-1",
                           "--port", str(port)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"serve.py: error: --port {port}: already in use on 127.0.0.1; choose another port"


def test_inputs_over_4096_px_are_refused(tmp_path: Path) -> None:
    save_ours(tmp_path / "ck" / "exp", netG="resnet_6blocks", ngf=2, norm="instance", no_dropout=True)
    handle = handler_for(tmp_path, "exp")
    assert handle({"composite": Image.new("RGB", (4096, 8), "white")}).size == (4096, 8)
    with pytest.raises(InputRefused, match=r"4097x8 px; sides over 4096 px are refused"):
        handle({"composite": Image.new("RGB", (4097, 8), "white")})
    with pytest.raises(InputRefused, match=r"8x5000 px"):
        handle({"composite": Image.new("RGB", (8, 5000), "white")})
    assert handle(None) is None   # a cleared canvas clears the result


def test_each_request_is_seeded_like_translate_py(tmp_path: Path) -> None:
    # Paper mode (dropout on): two requests agree only because each starts from --seed.
    save_ours(tmp_path / "ck" / "exp", **UNET)
    handle = handler_for(tmp_path, "exp")
    with Image.open(FACADE) as image:
        first, second = (np.asarray(handle({"composite": image.convert("RGB")})) for _ in range(2))
    assert np.array_equal(first, second)


def test_colorization_model_colours_a_gray_upload_as_translate_does(tmp_path: Path) -> None:
    save_ours(tmp_path / "ck" / "col", **UNET, model="colorization", input_nc=1, output_nc=2)
    gray = tmp_path / "gray.png"
    with Image.open(FACADE) as image:
        image.convert("L").save(gray)
    handle = handler_for(tmp_path, "col")
    with Image.open(gray) as image:
        shown = np.asarray(handle({"composite": image.convert("RGB")})).astype(int)
    assert translate.main(["--name", "col", "--checkpoints_dir", str(tmp_path / "ck"), "--gpu_ids", "-1",
                           "--input", str(gray), "--output", str(tmp_path / "out")]) == 0
    expected = np.asarray(Image.open(tmp_path / "out" / "gray.png")).astype(int)
    assert shown.shape == expected.shape == (256, 512, 3)
    assert np.abs(shown - expected).max() <= 1
    assert np.abs(shown[..., 0] - shown[..., 2]).max() > 0   # colour, not gray


def test_page_defaults_loopback_no_share_bounded_queue(tmp_path: Path) -> None:
    opt = serve.parse(["--name", "exp"])
    assert (opt.host, opt.share, opt.max_side, opt.max_queue) == ("127.0.0.1", False, 4096, 8)
    settings = PageSettings(title="t", canvas_size=64, max_side=4096, on_button=True, max_queue=3,
                            save_inputs=None)
    page, launch_kwargs = build_page(SketchHandler(lambda image, name: image, 0, 4096), settings)
    # gradio keeps the queue bound on its private queue object; the page has no public getter.
    assert page._queue.max_size == 3
    assert set(launch_kwargs) == {"theme"}
    # What the page's events are bound to, from the config gradio sends to the browser.
    for on_button, trigger in ((True, "click"), (False, "input")):
        settings.on_button = on_button
        config = build_page(SketchHandler(lambda image, name: image, 0, 4096), settings)[0].get_config_file()
        ids = {c["id"]: c["props"].get("elem_id") for c in config["components"]}
        (event,) = config["dependencies"]
        ((target, name),) = event["targets"]
        assert (ids[target], name) == (("translate" if on_button else "sketch"), trigger)
    with pytest.raises(SystemExit):
        serve.parse(["--name", "exp", "--port", "70000"])


def test_a_checkpoint_trained_with_pad_is_served_with_reflect_fit(tmp_path: Path, monkeypatch) -> None:
    save_ours(tmp_path / "ck" / "pad", netG="resnet_6blocks", ngf=2, norm="instance", no_dropout=True,
              preprocess="pad")
    image = Image.fromarray(np.random.default_rng(1).integers(0, 256, (45, 72, 3), dtype=np.uint8))
    image.save(tmp_path / "odd.png")
    handlers = []

    class NoPage:
        def launch(self, **kwargs) -> None:   # the page itself is tested in test_serve_browser.py
            pass

    def build_page(handler: SketchHandler, settings: PageSettings) -> tuple[NoPage, dict]:
        handlers.append(handler)
        return NoPage(), {}

    monkeypatch.setattr(serve, "build_page", build_page)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    for fit in ([], ["--fit", "resize"]):
        assert serve.main(["--name", "pad", "--checkpoints_dir", str(tmp_path / "ck"), "--gpu_ids", "-1",
                           "--port", str(port), *fit]) == 0
    assert [h.translate.fit for h in handlers] == ["reflect", "resize"]   # a typed --fit still wins
    assert translate.main(["--name", "pad", "--checkpoints_dir", str(tmp_path / "ck"), "--gpu_ids", "-1",
                           "--input", str(tmp_path / "odd.png"), "--output", str(tmp_path / "out"),
                           "--fit", "reflect"]) == 0
    shown = np.asarray(handlers[0]({"composite": image}))
    assert shown.shape == (45, 72, 3) and np.array_equal(shown, np.asarray(Image.open(tmp_path / "out" / "odd.png")))


def test_a_truncated_upload_is_refused_with_a_message(tmp_path: Path) -> None:
    """Its header is whole (so a header-only check let it through to gradio's decoder, which
    failed with a traceback); the page's own check must decode it and refuse it."""
    from gradio.components.image_editor import EditorData
    from gradio.data_classes import FileData
    import gradio as gr

    whole = tmp_path / "whole.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(whole)
    cut = tmp_path / "cut.png"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with Image.open(cut) as image:   # the oracle: PIL reads the header, and fails on the pixels
        assert image.size == (64, 64)
        with pytest.raises(OSError, match="truncated"):
            image.load()
    expected = "trunc.png: not an image the page can read (image file is truncated)"
    with pytest.raises(InputRefused) as refused:
        check_upload(cut, "trunc.png", 4096)
    assert str(refused.value) == expected
    settings = PageSettings(title="t", canvas_size=64, max_side=4096, on_button=True, max_queue=3, save_inputs=None)
    page, _ = build_page(SketchHandler(lambda image, name: image, 0, 4096), settings)
    editor = next(b for b in page.blocks.values() if getattr(b, "elem_id", None) == "sketch")
    upload = FileData(path=str(cut), orig_name="trunc.png")
    with pytest.raises(gr.Error) as shown:
        editor.preprocess(EditorData(background=upload, layers=[], composite=upload))
    assert shown.value.message == expected
    ok = FileData(path=str(whole), orig_name="whole.png")
    assert editor.preprocess(EditorData(background=ok, layers=[], composite=ok))["composite"].size == (64, 64)


@pytest.mark.parametrize("flags,message", [
    (["--canvas_size", "100000"], "--canvas_size 100000: at most --max_side (4096)"),
    (["--canvas_size", "300", "--max_side", "256"], "--canvas_size 300: at most --max_side (256)"),
])
def test_a_canvas_larger_than_max_side_is_refused_at_start(tmp_path: Path, capsys, flags: list[str],
                                                           message: str) -> None:
    # No checkpoint is needed: the sizes are checked before anything is loaded or allocated.
    assert serve.main(["--name", "nothing", "--checkpoints_dir", str(tmp_path), "--gpu_ids", "-1", *flags]) == 1
    assert capsys.readouterr().err == f"serve.py: error: {message}\n"
