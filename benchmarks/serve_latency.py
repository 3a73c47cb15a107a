"""The serve page's request latency and the ONNX Runtime path, for benchmarks/infer_speed.py.

Each is a context that yields one request as a callable, so that infer_speed.py times it in
the same rounds as the torch variants (a shared machine's load then weighs on all alike).
``onnx_runner`` exports the benchmark's generator (eval mode: the exported graph is frozen) and
runs it with onnxruntime on the CPU. ``serve_runner`` starts serve.py on a loopback port with
that generator; a request goes through gradio's HTTP API (upload, queue, translate, PNG
encode, download), as a page's request is served.
"""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from PIL import Image

from benchmarks.common import ROOT

from engine.checkpoint import write_generator
from engine.distributed import unwrap
from engine.launch import free_loopback_port
from inference.onnx_model import OnnxGenerator, OnnxSpec, export_onnx
from models.networks import size_multiple
from support.serving import wait_until_serving


@contextlib.contextmanager
def onnx_runner(net: torch.nn.Module, netG: str, image: torch.Tensor, workdir: Path) -> Iterator[Callable[[], object]]:
    spec = OnnxSpec(image.shape[1], image.shape[1], size_multiple(netG), "rgb", "eval (benchmark)", netG)
    path = workdir / "G.onnx"
    export_onnx(net.eval(), spec, path)
    gen = OnnxGenerator(path)
    yield lambda: gen(image)


@contextlib.contextmanager
def serve_runner(net: torch.nn.Module, options: dict, workdir: Path, crop_size: int,
                 extra_args: list[str]) -> Iterator[Callable[[], object]]:
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    from gradio_client import Client, handle_file

    write_generator(workdir / "ck" / "bench" / "latest_net_G.pt", net.state_dict(), unwrap(net).spec.as_dict(),
                    options)
    sketch = workdir / "sketch.png"
    pixels = np.full((crop_size, crop_size, 3), 255, np.uint8)
    pixels[crop_size // 4:3 * crop_size // 4, crop_size // 2 - 1:crop_size // 2 + 1] = 0
    Image.fromarray(pixels).save(sketch)
    port = free_loopback_port()
    log = (workdir / "serve.log").open("wb")
    proc = subprocess.Popen([sys.executable, "serve.py", "--name", "bench", "--checkpoints_dir",
                             str(workdir / "ck"), "--port", str(port), *extra_args],
                            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}/"
        if not wait_until_serving(url, proc, timeout_s=300, interval_s=0.5):
            raise RuntimeError(f"serve.py did not start: {(workdir / 'serve.log').read_text()[-2000:]}")
        client = Client(url, verbose=False, analytics_enabled=False, download_files=str(workdir / "dl"))
        value = {"background": handle_file(str(sketch)), "layers": [], "composite": handle_file(str(sketch))}
        yield lambda: client.predict(value, api_name="/respond")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def scratch_dir() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="infer_speed_")
