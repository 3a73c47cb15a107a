"""Clients for serve.py on loopback: the server as a context, the page's inputs (a canvas with
strokes, an uploaded photo), one request through gradio's HTTP API as the page sends it, many
clients at once, and the server's resident memory from /proc.

Used by benchmarks/serve_load.py and, in a small version, by tests/test_serve_load.py.
"""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from PIL import Image, ImageDraw

from engine.launch import free_loopback_port
from support.serving import wait_until_serving

ROOT = Path(__file__).resolve().parent.parent

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"


@contextlib.contextmanager
def client_temp_folder(folder: Path) -> Iterator[None]:
    """gradio_client downloads each result into a new folder of the temp directory, moves the
    file on and leaves that folder behind, empty (one per request): the temp directory is
    ``folder`` meanwhile, which the caller removes with the rest of its files."""
    folder.mkdir(parents=True, exist_ok=True)
    before = tempfile.tempdir
    tempfile.tempdir = str(folder)
    try:
        yield
    finally:
        tempfile.tempdir = before


@dataclass
class Served:
    url: str
    pid: int
    log: Path
    process: subprocess.Popen | None = None   # its exit status is there once the block has ended


@contextlib.contextmanager
def serve(ckpt: Path, name: str, workdir: Path, *extra: str, env: dict[str, str] | None = None) -> Iterator[Served]:
    """serve.py on a free loopback port (``env`` added to this environment), stopped (SIGTERM,
    then SIGKILL) when the block ends."""
    port = free_loopback_port()
    log_path = workdir / f"serve_{port}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, str(ROOT / "serve.py"), "--name", name, "--checkpoints_dir",
                                 str(ckpt), "--gpu_ids", "-1", "--host", "127.0.0.1", "--port", str(port), *extra],
                                cwd=workdir, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
        try:
            url = f"http://127.0.0.1:{port}/"
            if not wait_until_serving(url, proc, timeout_s=300, interval_s=0.5):
                raise RuntimeError(f"serve.py did not start:\n{log_path.read_text()[-3000:]}")
            yield Served(url, proc.pid, log_path, proc)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def stroke_canvas(path: Path, seed: int, side: int = 256) -> Path:
    """What the page sends after a few strokes: black lines on the white canvas, as PNG."""
    rng = np.random.default_rng(seed)
    canvas = Image.new("RGB", (side, side), "white")
    draw = ImageDraw.Draw(canvas)
    for _ in range(int(rng.integers(3, 9))):
        points = [tuple(int(v) for v in rng.integers(0, side, 2)) for _ in range(int(rng.integers(2, 6)))]
        draw.line(points, fill="black", width=2)
    canvas.save(path)
    return path


def editor_value(path: Path) -> dict[str, Any]:
    """The ImageEditor's value for one image: the background and the flattened composite."""
    from gradio_client import handle_file
    return {"background": handle_file(str(path)), "layers": [], "composite": handle_file(str(path))}


def client_for(url: str, downloads: Path) -> Any:
    from gradio_client import Client
    return Client(url, verbose=False, analytics_enabled=False, download_files=str(downloads))


@dataclass
class Outcome:
    input_index: int
    kind: str                 # "ok", "refused" (queue full, or the page's message), "error"
    seconds: float
    pixels: np.ndarray | None = None
    message: str = ""


def send(client: Any, path: Path, index: int) -> Outcome:
    start = time.perf_counter()
    try:
        result = client.predict(editor_value(path), api_name="/respond")
    except Exception as err:  # noqa: BLE001 - the client's error types carry the page's message
        message = (str(err).strip().splitlines() or [type(err).__name__])[0]
        kind = "refused" if "queue" in message.lower() or type(err).__name__ == "AppError" else "error"
        return Outcome(index, kind, time.perf_counter() - start, message=message)
    seconds = time.perf_counter() - start
    with Image.open(result) as image:
        pixels = np.asarray(image.convert("RGB")).copy()
    os.unlink(result)
    return Outcome(index, "ok", seconds, pixels)


def serial_outputs(url: str, inputs: list[Path], downloads: Path) -> list[np.ndarray]:
    """Each input served alone, one after the other: what every concurrent answer must equal."""
    client = client_for(url, downloads)
    outputs = []
    for i, path in enumerate(inputs):
        outcome = send(client, path, i)
        if outcome.pixels is None:
            raise RuntimeError(f"{path}: the request alone failed ({outcome.message})")
        outputs.append(outcome.pixels)
    return outputs


def run_clients(url: str, inputs: list[Path], clients: int, per_client: int, downloads: Path,
                deadline_s: float = 600, progress: list[int] | None = None) -> list[Outcome]:
    """``clients`` threads, each with its own HTTP client, each sending ``per_client`` requests
    one after the other (cycling through ``inputs``), all starting together."""
    outcomes: list[Outcome] = []
    lock, start = threading.Lock(), threading.Barrier(clients)
    stop_at = time.monotonic() + deadline_s

    def one_client(c: int) -> None:
        client = client_for(url, downloads / f"c{c}")
        start.wait()
        for k in range(per_client):
            if time.monotonic() > stop_at:
                return
            index = (c * per_client + k) % len(inputs)
            outcome = send(client, inputs[index], index)
            with lock:
                outcomes.append(outcome)
                if progress is not None:
                    progress[0] += 1

    threads = [threading.Thread(target=one_client, args=(c,), daemon=True) for c in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max(1.0, stop_at - time.monotonic() + 30))
    return outcomes


def rss_mib(pid: int) -> float:
    """Resident memory of process ``pid`` (VmRSS), MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def summary(outcomes: list[Outcome], expected: list[np.ndarray]) -> dict[str, Any]:
    """Counts, latency percentiles of the answered requests, and answers unlike the serial ones."""
    ok = [o for o in outcomes if o.kind == "ok"]
    wrong = sum(not np.array_equal(o.pixels, expected[o.input_index]) for o in ok)
    latencies = np.array([o.seconds for o in ok]) * 1000
    return {"requests": len(outcomes), "answered": len(ok), "refused": sum(o.kind == "refused" for o in outcomes),
            "errors": sum(o.kind == "error" for o in outcomes), "wrong_outputs": wrong,
            "p50_ms": round(float(np.percentile(latencies, 50)), 1) if ok else None,
            "p99_ms": round(float(np.percentile(latencies, 99)), 1) if ok else None,
            "refusal_messages": sorted({o.message for o in outcomes if o.kind == "refused"})[:3],
            "error_messages": sorted({o.message for o in outcomes if o.kind == "error"})[:3]}
