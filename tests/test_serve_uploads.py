"""serve.py's uploads and kept canvases: a 16-bit gray upload reaches the generator as the
project's reader rounds it to 8 bits (gradio's Pillow conversion clipped it to a near-white
sheet), and --save_inputs numbers on after the files already there (it restarted at 1 and
replaced an earlier server's canvases)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

import serve
import translate
from data.pixels import read_pixels
from inference.generator import load_generator, translator_for
from inference.sketch_page import PageSettings, SketchHandler, build_page
from tests.test_translate import save_ours

FACADE = Path(__file__).resolve().parent / "fixtures" / "facades" / "test" / "1.jpg"
UNET = dict(netG="unet_256", ngf=4, norm="batch", no_dropout=False)


def gray16(path: Path) -> np.ndarray:
    """A 16-bit gray PNG (mode I;16) whose samples use the whole 16-bit range."""
    with Image.open(FACADE) as image:
        eight = np.asarray(image.convert("L"))[20:53, 286:331].astype(np.uint16)
    samples = eight * 257 + (np.arange(eight.size).reshape(eight.shape) % 200).astype(np.uint16)
    Image.fromarray(samples).save(path)
    assert Image.open(path).mode.startswith("I;16")
    return samples


def editor_of(handler: SketchHandler):
    settings = PageSettings(title="t", canvas_size=64, max_side=4096, on_button=True, max_queue=3, save_inputs=None)
    page, _ = build_page(handler, settings)
    return next(b for b in page.blocks.values() if getattr(b, "elem_id", None) == "sketch")


def test_a_16_bit_gray_upload_is_rounded_to_8_bits_not_clipped(tmp_path: Path) -> None:
    from gradio.components.image_editor import EditorData
    from gradio.data_classes import FileData

    path = tmp_path / "scan16.png"
    samples = gray16(path)
    save_ours(tmp_path / "ck" / "col", **UNET, model="colorization", input_nc=1, output_nc=2)
    opt = serve.parse(["--name", "col", "--checkpoints_dir", str(tmp_path / "ck"), "--gpu_ids", "-1"])
    handler = SketchHandler(translator_for(load_generator(opt)), opt.seed, 4096)
    editor = editor_of(handler)
    upload = FileData(path=str(path), orig_name="scan16.png")
    value = editor.preprocess(EditorData(background=upload, layers=[], composite=upload))
    assert upload.path == str(path)   # gradio's record of the upload is left as it was

    # The oracle: round(v * 255 / 65535) in every channel (the old page: min(v, 255) = 255).
    canvas = np.asarray(value["composite"]).astype(int)
    expected = np.rint(samples.astype(np.float64) * 255 / 65535).astype(int)
    assert canvas.shape == (*samples.shape, 3)
    for channel in range(3):
        assert np.array_equal(canvas[..., channel], expected)

    # The colorization shown equals translate.py's for the 16-bit file itself.
    shown = np.asarray(handler(value)).astype(int)
    assert translate.main(["--name", "col", "--checkpoints_dir", str(tmp_path / "ck"), "--gpu_ids", "-1",
                           "--input", str(path), "--output", str(tmp_path / "out")]) == 0
    (result,) = (tmp_path / "out").iterdir()   # scan16.png, or .tif where translate.py keeps 16 bits
    written = read_pixels(result).permute(1, 2, 0).numpy().astype(np.float64)
    if written.max() > 255:
        written = np.rint(written * 255 / 65535)
    # The page's input is the 8-bit rounding of translate.py's: its L differs by < 0.5 level.
    assert shown.shape == written.shape and np.abs(shown - written).max() <= 2


def test_an_8_bit_upload_is_decoded_by_gradio_as_before(tmp_path: Path) -> None:
    from gradio.components.image_editor import EditorData
    from gradio.data_classes import FileData

    path = tmp_path / "rgb.png"
    pixels = np.random.default_rng(0).integers(0, 256, (21, 34, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    editor = editor_of(SketchHandler(lambda image, name: image, 0, 4096))
    upload = FileData(path=str(path), orig_name="rgb.png")
    value = editor.preprocess(EditorData(background=upload, layers=[], composite=upload))
    assert np.array_equal(np.asarray(value["composite"]), pixels)


def test_save_inputs_numbers_on_after_the_files_already_there(tmp_path: Path) -> None:
    kept = tmp_path / "kept"
    kept.mkdir()
    Image.new("RGB", (4, 4), "red").save(kept / "input_00001.png")
    Image.new("RGB", (4, 4), "blue").save(kept / "input_00007.png")
    (kept / "input_notes.txt").write_text("not a canvas")
    before = {p.name: p.read_bytes() for p in kept.iterdir()}
    for colour in ("green", "yellow"):   # two server processes, one request each
        handler = SketchHandler(lambda image, name: image, 0, 4096, save_inputs=kept)
        handler({"composite": Image.new("RGB", (4, 4), colour)})
    after = {p.name: p for p in kept.iterdir()}
    assert sorted(after) == ["input_00001.png", "input_00007.png", "input_00008.png", "input_00009.png",
                             "input_notes.txt"]
    assert all(after[name].read_bytes() == data for name, data in before.items())   # nothing replaced
    for name, colour in (("input_00008.png", (0, 128, 0)), ("input_00009.png", (255, 255, 0))):
        assert Image.open(after[name]).getpixel((0, 0)) == colour


def test_the_readme_says_the_page_works_at_8_bits() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme[readme.index("## Draw in the browser: `serve.py`"):]
    section = section[:section.index("\n## ", 1)]
    assert "rounded to 8 bits" in section and "tests/test_serve_uploads.py" in section
