"""The serve.py page: draw (or upload) on the left, the translation appears on the right.

The page only collects the canvas and shows the result; the translation itself is the
Translator that translate.py uses (inference/translator.py), seeded per request with the
command's --seed so that a drawing gives what translate.py gives for the same image.

gradio is imported by ``build_page`` only, after analytics and version checks are switched
off (nothing may be fetched from the internet).
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from PIL import Image, UnidentifiedImageError

from data import DataError
from data.pixels import bits_of, open_eight_bit_as, read_pixels
from util.errors import UserError

log = logging.getLogger(__name__)

# Fonts the browser already has: gradio's default theme would link Google Fonts.
SYSTEM_FONTS = ["ui-sans-serif", "system-ui", "sans-serif"]
MONO_FONTS = ["ui-monospace", "monospace"]


class InputRefused(UserError, ValueError):
    """A request the page answers with a message instead of a translation."""


@dataclass
class PageSettings:
    title: str
    canvas_size: int           # side of the blank drawing canvas, px
    max_side: int              # larger inputs are refused
    on_button: bool            # translate on a button press instead of after every stroke
    max_queue: int             # waiting requests beyond this are turned away
    save_inputs: Path | None   # keep each received canvas here (what was sent, before translation)


def check_upload(path: str | Path, shown_name: str, max_side: int) -> None:
    """Refuse an uploaded file before gradio decodes it: an empty file, a file that is not a
    picture, one over ``max_side`` (from its header: a small file can declare billions of
    pixels), or one whose pixels do not decode (a truncated file). ``shown_name`` is the name
    the user gave the file, not the server's copy."""
    try:
        if os.path.getsize(path) == 0:
            raise InputRefused(f"{shown_name}: the uploaded file is empty (0 bytes)")
        with Image.open(path) as image:
            width, height = image.size
            check_side(width, height, max_side)
            # The header can be whole while the pixels are not (a cut-off upload): decode it all
            # here, where a failure is refused with a message, not inside gradio's decoder.
            image.load()
    except InputRefused:
        raise
    except Image.DecompressionBombError:
        raise InputRefused(f"{shown_name}: refused, it declares more than {2 * Image.MAX_IMAGE_PIXELS} pixels "
                           "(a decompression bomb)") from None
    except UnidentifiedImageError:
        raise InputRefused(f"{shown_name}: not a picture (no image format this page reads)") from None
    except Exception as err:  # noqa: BLE001 - any reader failure means the upload is no usable picture
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise InputRefused(f"{shown_name}: not an image the page can read ({first})") from None


def eight_bit_copy(path: str | Path, shown_name: str, folder: Path) -> str | None:
    """An 8-bit PNG copy in ``folder`` of an upload with wider samples (16-bit or floating
    point), rounded as the project's readers round (data/pixels.open_eight_bit_as: round(v * 255 /
    65535)); None for an 8-bit file. gradio's editor converts with Pillow, which clips a 16-bit
    gray image's samples at 255 (a near-white sheet); the page works at 8 bits, so this is the
    one place a deeper upload loses depth, and it loses only that."""
    try:
        if bits_of(read_pixels(Path(path))) <= 8:
            return None
        image = open_eight_bit_as(Path(path))
    except DataError as err:
        raise InputRefused(f"{shown_name}: {str(err).removeprefix(f'{path}: ')}") from None
    fd, copy = tempfile.mkstemp(suffix=".png", dir=folder)
    with os.fdopen(fd, "wb") as out:
        image.save(out, format="PNG")
    return copy


def check_side(width: int, height: int, max_side: int) -> None:
    if max(width, height) > max_side:
        raise InputRefused(f"the image is {width}x{height} px; sides over {max_side} px are refused "
                           "(scale it down first)")


def editor_files(payload: Any) -> list[Any]:
    """The files of gradio's ImageEditor payload (background, layers, composite) that exist."""
    if payload is None or getattr(payload, "id", None) is not None:
        return []   # nothing uploaded, or the page's own canvas blobs held in memory
    return [f for f in (payload.background, *(payload.layers or ()), payload.composite)
            if f is not None and getattr(f, "path", None)]


def canvas_image(value: Any) -> Image.Image | None:
    """The flattened canvas from gradio's ImageEditor value (background + strokes)."""
    if value is None:
        return None
    image = value.get("composite") if isinstance(value, dict) else value
    return image if isinstance(image, Image.Image) else None


SAVED_INPUT = re.compile(r"input_(\d+)\.png")


def keep_input(image: Image.Image, folder: Path) -> Path:
    """Save a received canvas as the next ``input_NNNNN.png`` of ``folder``: numbered after the
    highest one there (an earlier server's canvases stay), and created exclusively, so that even
    two servers sharing the folder never replace each other's file."""
    folder.mkdir(parents=True, exist_ok=True)
    number = max((int(m.group(1)) for p in folder.iterdir() if (m := SAVED_INPUT.fullmatch(p.name))), default=0)
    while True:
        number += 1
        path = folder / f"input_{number:05d}.png"
        try:
            with open(path, "xb") as out:
                image.save(out, format="PNG")
            return path
        except FileExistsError:
            continue


class SketchHandler:
    """One request: check the image, translate it with a fixed seed, count the time."""

    def __init__(self, translate: Callable[[Image.Image, str], Image.Image], seed: int, max_side: int,
                 save_inputs: Path | None = None) -> None:
        self.translate, self.seed, self.max_side, self.save_inputs = translate, seed, max_side, save_inputs
        self.lock = threading.Lock()   # the seed and the network are shared: one request at a time
        self.count = 0

    def __call__(self, value: Any) -> Image.Image | None:
        image = canvas_image(value)
        if image is None:
            return None
        width, height = image.size
        check_side(width, height, self.max_side)
        with self.lock:
            self.count += 1
            if self.save_inputs is not None:
                keep_input(image, self.save_inputs)
            start = time.perf_counter()
            torch.manual_seed(self.seed)
            result = self.translate(image, "canvas")
            log.info("request %d: %dx%d px translated in %.0f ms", self.count, width, height,
                     (time.perf_counter() - start) * 1000)
        return result


class ResultFiles:
    """Each answer as a PNG file of its own, written whole before gradio sees it.

    gradio caches an image the function returns under the hash of its bytes and rewrites that
    file for every equal answer, while another client may be downloading it (two users who send
    the same drawing, a blank canvas): that client received 0 bytes. A file path is instead
    copied into gradio's cache under a temporary name and renamed. The newest ``keep`` files
    are kept (gradio has copied each long before), so the folder stays small.
    """

    def __init__(self, keep: int = 64) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="pix2pix_serve_"))
        self.keep, self.lock, self.written = keep, threading.Lock(), deque()
        weakref.finalize(self, shutil.rmtree, self.folder, ignore_errors=True)

    def save(self, image: Image.Image) -> str:
        fd, path = tempfile.mkstemp(suffix=".png", dir=self.folder)
        with os.fdopen(fd, "wb") as out:
            image.save(out, format="PNG")
        with self.lock:
            self.written.append(path)
            while len(self.written) > self.keep:
                os.unlink(self.written.popleft())
        return path


def quiet_gradio_environment() -> None:
    """Before gradio is imported: no analytics, no version check, no Hugging Face calls."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
    # gradio's own HTTP client logs each of its loopback health checks at INFO.
    if not logging.getLogger().isEnabledFor(logging.DEBUG):
        logging.getLogger("httpx").setLevel(logging.WARNING)


def build_page(handler: SketchHandler, settings: PageSettings) -> tuple[Any, dict[str, Any]]:
    """The gradio Blocks and the keyword arguments its launch() needs (theme, css)."""
    quiet_gradio_environment()
    import gradio as gr

    results = ResultFiles()

    def respond(value: Any) -> str | None:
        try:
            image = handler(value)
        except UserError as err:   # InputRefused, and the translator's own (an image too small for G)
            raise gr.Error(str(err), print_exception=False) from None
        return None if image is None else results.save(image)

    def readable_upload(preprocess: Callable[[Any], Any]) -> Callable[[Any], Any]:
        # Runs before the editor decodes the files, so a bad upload is refused with a message
        # on the page (gradio would otherwise fail inside PIL and show only "Error").
        def checked(payload: Any) -> Any:
            files = editor_files(payload)
            with tempfile.TemporaryDirectory(prefix="pix2pix_upload_") as folder:
                originals = [file.path for file in files]
                try:
                    for file in files:
                        shown = file.orig_name or "the upload"
                        check_upload(file.path, shown, settings.max_side)
                        # A deeper file is decoded by the project's reader, not clipped by gradio's.
                        file.path = eight_bit_copy(file.path, shown, Path(folder)) or file.path
                    return preprocess(payload)
                except InputRefused as err:
                    raise gr.Error(str(err), print_exception=False) from None
                finally:
                    for file, path in zip(files, originals):
                        file.path = path
        return checked

    side = settings.canvas_size
    blank = Image.new("RGB", (side, side), "white")
    with gr.Blocks(title=settings.title, analytics_enabled=False) as page:
        gr.Markdown(f"### {settings.title}\nDraw with the brush (size and eraser in the toolbar, undo and clear "
                    "above the canvas) or upload an image; the translation appears on the right"
                    + (" when you press Translate." if settings.on_button else " after each stroke.")
                    + " The page works at 8 bits: a 16-bit upload is rounded to 8 bits first "
                    "(translate.py keeps its depth).")
        with gr.Row():
            editor = gr.ImageEditor(
                value={"background": blank, "layers": [], "composite": blank}, type="pil", image_mode="RGB",
                label="input", sources=("upload", "clipboard"), canvas_size=(side, side), layers=False,
                transforms=(), format="png", elem_id="sketch",
                brush=gr.Brush(colors=["#000000", "#ffffff"], default_size=2, color_mode="defaults"),
                eraser=gr.Eraser(default_size=8))
            editor.preprocess = readable_upload(editor.preprocess)
            output = gr.Image(label="translation", type="filepath", format="png", interactive=False,
                              elem_id="translation")
        if settings.on_button:
            button = gr.Button("Translate", variant="primary", elem_id="translate")
            button.click(respond, inputs=editor, outputs=output, concurrency_limit=1)
        else:
            # input fires once per finished stroke (change also fires for the initial value);
            # always_last: strokes drawn while a translation runs collapse into one request.
            editor.input(respond, inputs=editor, outputs=output, trigger_mode="always_last",
                          concurrency_limit=1, show_progress="minimal")
    page.queue(max_size=settings.max_queue, default_concurrency_limit=1)
    theme = gr.themes.Default(font=SYSTEM_FONTS, font_mono=MONO_FONTS)
    return page, {"theme": theme}
