"""serve.py in a real browser: headless Debian chromium (driven by playwright) draws strokes on
the canvas, the page shows translate.py's output for the canvas as sent (to 1 level), the
screenshot shows the drawing and the result, and neither the server nor the page reaches
beyond the loopback interface. The server is started on a free loopback port and stopped."""
from __future__ import annotations

import re
import subprocess
import sys
import time
import urllib.request
from io import BytesIO
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import sync_playwright

import translate
from engine.launch import free_loopback_port
from support.serving import wait_until_serving
from tests.conftest import CHROMIUM, stop_server
from tests.test_translate import save_ours

# A real browser draws on the page: timing-sensitive, so make test runs it alone (pytest.ini).
pytestmark = pytest.mark.alone

ROOT = Path(__file__).resolve().parent.parent
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# Runs serve.py with every outgoing connection and name lookup written to a log first, so the
# test sees any attempt to reach the internet (analytics, version checks, fonts, share links).
_LOGGING_SERVER = """
import runpy, socket, sys
log = open(sys.argv[1], "a", buffering=1)
connect, lookup = socket.socket.connect, socket.getaddrinfo
def logged_connect(self, address):
    log.write(f"connect {address}\\n")
    return connect(self, address)
def logged_lookup(host, *args, **kwargs):
    log.write(f"lookup {host}\\n")
    return lookup(host, *args, **kwargs)
socket.socket.connect, socket.getaddrinfo = logged_connect, logged_lookup
sys.argv = sys.argv[2:]
runpy.run_path("serve.py", run_name="__main__")
"""
# Strokes in page pixels, inside the 256 px canvas (its on-screen box is found at run time).
STROKES = [((0.15, 0.2), (0.85, 0.8)), ((0.2, 0.85), (0.8, 0.15)), ((0.5, 0.1), (0.5, 0.9))]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    tmp = tmp_path_factory.mktemp("serve")
    # Dropout on and batch statistics (the default, paper mode): equal outputs need the same seed.
    save_ours(tmp / "ck" / "exp", netG="unet_256", ngf=4, norm="batch", no_dropout=False)
    port = free_loopback_port()
    netlog, saved, out = tmp / "net.log", tmp / "saved", tmp / "server.log"
    cmd = [sys.executable, "-c", _LOGGING_SERVER, str(netlog), "serve.py", "--name", "exp", "--checkpoints_dir",
           str(tmp / "ck"), "--gpu_ids", "-1", "--port", str(port), "--save_inputs", str(saved)]
    with out.open("wb") as server_log:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=server_log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        if not wait_until_serving(url, proc, timeout_s=120, interval_s=0.5):
            pytest.fail(f"serve.py did not start:\n{out.read_text()[-3000:]}")
        yield {"url": url, "port": port, "tmp": tmp, "saved": saved, "netlog": netlog, "proc": proc}
    finally:
        stop_server(proc, grace_s=20)


def fetch_png(src: str) -> np.ndarray:
    with urllib.request.urlopen(src, timeout=10) as response:
        return np.asarray(Image.open(BytesIO(response.read())).convert("RGB")).astype(int)


def settle(page, saved: Path, seconds: float = 2.0, timeout: float = 60.0) -> str:
    """Wait until the server has received no new canvas and the shown result has not changed for
    ``seconds``; returns the result's URL."""
    img = page.locator("#translation img")
    img.wait_for(state="visible", timeout=timeout * 1000)
    last, stable_since, deadline = None, time.monotonic(), time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = (img.get_attribute("src"), len(list(saved.glob("*.png"))))
        if state != last:
            last, stable_since = state, time.monotonic()
        elif time.monotonic() - stable_since >= seconds:
            return state[0]
        page.wait_for_timeout(250)
    pytest.fail("the page's result kept changing")


@pytest.fixture(scope="module")
def drawn(server: dict, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """The page after three mouse strokes, with its screenshot and every request it made."""
    shot = tmp_path_factory.mktemp("shots") / "page.png"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            requests: list[str] = []
            page.on("request", lambda request: requests.append(request.url))
            page.goto(server["url"], wait_until="networkidle")
            # The editor draws the blank canvas as a white square; strokes go inside it.
            box = steady_canvas_box(page)
            sources = []
            for (x0, y0), (x1, y1) in STROKES:
                page.mouse.move(box[0] + x0 * box[2], box[1] + y0 * box[3])
                page.mouse.down()
                for i in range(1, 25):
                    t = i / 24
                    page.mouse.move(box[0] + (x0 + (x1 - x0) * t) * box[2], box[1] + (y0 + (y1 - y0) * t) * box[3])
                page.mouse.up()
                sources.append(settle(page, server["saved"]))
            result = fetch_png(sources[-1])
            output_box = page.locator("#translation img").bounding_box()
            page.screenshot(path=str(shot))
        finally:
            browser.close()
    yield {"sources": sources, "result": result, "shot": shot, "canvas_box": box, "output_box": output_box,
           "requests": requests}


def steady_canvas_box(page, timeout_s: float = 60.0) -> tuple[float, float, float, float]:
    """:func:`canvas_box` once the page's layout has settled (the same box twice, half a second
    apart): on a loaded machine the editor was still sizing its canvas a second after the page
    loaded, and strokes drawn then missed it."""
    last, deadline = None, time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        page.wait_for_timeout(500)
        box = canvas_box(page)
        if box == last:
            return box
        last = box
    pytest.fail("the editor's canvas kept moving")


def canvas_box(page) -> tuple[float, float, float, float]:
    """(x, y, width, height) of the drawing area: the editor shows the 256 px canvas centred in
    its box, scaled by the zoom it prints in its toolbar (e.g. "113%")."""
    editor = page.locator("#sketch").bounding_box()
    zoom = int(page.locator("#sketch").get_by_text(re.compile(r"^\d+%$")).inner_text().rstrip("%")) / 100
    side = 256 * zoom
    cx, cy = editor["x"] + editor["width"] / 2, editor["y"] + editor["height"] / 2
    return (cx - side / 2, cy - side / 2, side, side)


def test_drawn_strokes_give_translate_py_output(server: dict, drawn: dict, tmp_path: Path) -> None:
    assert len(set(drawn["sources"])) == len(STROKES)   # a new result after every stroke
    received = sorted(server["saved"].glob("*.png"))
    canvas = received[-1]   # the last canvas the page sent, as the server received it
    with Image.open(canvas) as image:
        assert image.size == (256, 256)
        dark = (np.asarray(image.convert("L")) < 64).mean()
    assert 0.005 < dark < 0.2   # the strokes are on it: some dark pixels, mostly white paper
    assert translate.main(["--name", "exp", "--checkpoints_dir", str(server["tmp"] / "ck"), "--gpu_ids", "-1",
                           "--input", str(canvas), "--output", str(tmp_path)]) == 0
    expected = np.asarray(Image.open(tmp_path / f"{canvas.stem}.png").convert("RGB")).astype(int)
    assert drawn["result"].shape == expected.shape
    assert np.abs(drawn["result"] - expected).max() <= 1


def test_screenshot_shows_drawing_and_result(server: dict, drawn: dict) -> None:
    shot = np.asarray(Image.open(drawn["shot"]).convert("RGB")).astype(int)
    x, y, w, h = (int(round(v)) for v in drawn["canvas_box"])
    canvas = shot[y:y + h, x:x + w].mean(axis=-1)
    # Each stroke's midpoint region on screen is dark (the ink), the corners are white (paper).
    for (x0, y0), (x1, y1) in STROKES:
        cx, cy = int((x0 + x1) / 2 * w), int((y0 + y1) / 2 * h)
        assert canvas[cy - 3:cy + 4, cx - 3:cx + 4].min() < 100
    assert canvas[:5, :5].min() > 240 and canvas[-5:, -5:].min() > 240

    box = drawn["output_box"]
    shown = shot[int(box["y"]) + 2:int(box["y"] + box["height"]) - 2, int(box["x"]) + 2:int(box["x"] + box["width"]) - 2]
    result = np.asarray(Image.fromarray(drawn["result"].astype(np.uint8)).resize(
        (int(box["width"]), int(box["height"])), Image.BILINEAR)).astype(int)[2:-2, 2:-2]
    assert shown.shape == result.shape
    assert np.abs(shown - result).mean() < 12     # the result is what the page shows ...
    assert shown.std() > 5                        # ... and it is an image, not a blank box


def test_nothing_leaves_the_loopback_interface(server: dict, drawn: dict) -> None:
    local = (server["url"].rstrip("/"), "blob:", "data:")
    assert drawn["requests"] and all(url.startswith(local) for url in drawn["requests"]), \
        [u for u in drawn["requests"] if not u.startswith(local)]
    lines = server["netlog"].read_text().splitlines()
    outside = [line for line in lines
               if not any(host in line for host in ("127.0.0.1", "localhost", "'::1'"))]
    assert outside == []


def test_listens_on_loopback_only(server: dict) -> None:
    # /proc/net/tcp lists listening sockets (state 0A) as hex "address:port"; 0100007F is 127.0.0.1.
    rows = [line.split() for line in Path("/proc/net/tcp").read_text().splitlines()[1:]]
    listening = {row[1] for row in rows if row[3] == "0A" and int(row[1].split(":")[1], 16) == server["port"]}
    assert listening == {f"0100007F:{server['port']:04X}"}
