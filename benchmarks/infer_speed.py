"""Inference speed: the generator alone translating images, variants side by side.

    python benchmarks/infer_speed.py                        # unet_256, batch 1, CPU
    python benchmarks/infer_speed.py --eval --variants eager_fp32,bf16,onnxruntime,serve
    python benchmarks/infer_speed.py --device cuda --variants eager_fp32,bf16,bf16_compile

Prints one JSON line per variant: median latency (ms) and images/s. G runs as test.py runs it
by default (train mode: batch statistics and dropout, as in the paper) unless ``--eval``.
Two variants are not torch settings: ``onnxruntime`` (G exported by export.py's path and run by
onnxruntime on the CPU; always eval mode, as exported graphs are frozen) and ``serve`` (whole
requests to serve.py's page through gradio's HTTP API, G in serve.py's mode per ``--eval``).
"""
from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

import torch

from benchmarks.common import (ROOT, TF32_VARIANTS, VARIANTS, build_model, emit, load_average,
                    machine_name, median, split_argv, synchronize)

from engine.distributed import Runtime
from benchmarks.serve_latency import onnx_runner, scratch_dir, serve_runner

DEFAULT_VARIANTS = {"cpu": "eager_fp32,bf16,threads1,onnxruntime,serve",
                    "cuda": "eager_fp32,tf32,bf16,fp16,bf16_compile"}
# Variants measured outside the torch loop below (CPU only), each by its own function.
OUTSIDE_TORCH = ("onnxruntime", "serve")


def outside_runners(stack: contextlib.ExitStack, bench: argparse.Namespace, outside: list[str], model,
                    image: torch.Tensor) -> dict[str, Callable[[], object]]:
    """One request callable per variant measured outside torch's loop (set up before the rounds)."""
    if not outside:
        return {}
    work = Path(stack.enter_context(scratch_dir()))
    runners = {}
    if "serve" in outside:   # first: the ONNX export below switches the network to eval mode
        keys = ("model", "direction")   # the architecture travels as the network's spec
        serve_args = ["--gpu_ids", "-1"] + (["--eval"] if bench.eval else [])
        runners["serve"] = stack.enter_context(serve_runner(
            model.net_G, {k: getattr(model.opt, k) for k in keys}, work, bench.crop_size, serve_args))
    if "onnxruntime" in outside:
        runners["onnxruntime"] = stack.enter_context(onnx_runner(model.net_G, bench.netG, image, work))
    return {n: runners[n] for n in outside}


def run(bench: argparse.Namespace, extra: Sequence[str]) -> list[dict]:
    device = torch.device(bench.device)
    asked = (bench.variants or DEFAULT_VARIANTS[device.type]).split(",")
    outside = [n for n in asked if n in OUTSIDE_TORCH and device.type == "cpu"]
    names = [n for n in asked if n in VARIANTS and device.type in VARIANTS[n].devices and VARIANTS[n].patch is None]
    gpu = "0" if device.type == "cuda" else "-1"
    args = ["--dataroot", str(ROOT / "datasets" / "demo"), "--gpu_ids", gpu, "--netG", bench.netG,
            "--crop_size", str(bench.crop_size), "--load_size", str(bench.crop_size), "--display_id", "0", *extra]
    default_threads = torch.get_num_threads()
    models = {n: build_model(args, VARIANTS[n], Runtime(device=device)) for n in names or ["eager_fp32"]}
    for model in models.values():
        model.nets.pop("D", None)
        if bench.eval:
            model.eval()
    image = torch.rand(bench.batch_size, 3, bench.crop_size, bench.crop_size) * 2 - 1
    with contextlib.ExitStack() as stack:
        runners = outside_runners(stack, bench, outside, next(iter(models.values())), image)
        times: dict[str, list[float]] = {n: [] for n in names + outside}
        for round_ in range(bench.warmup + bench.steps):
            for n in names:
                torch.set_num_threads(VARIANTS[n].threads or default_threads)
                if device.type == "cuda":
                    precision = "tf32" if n in TF32_VARIANTS else "ieee"
                    torch.backends.cuda.matmul.fp32_precision = precision
                    torch.backends.cudnn.conv.fp32_precision = precision
                    torch.backends.cudnn.benchmark = True
                model = models[n]
                synchronize(device)
                start = time.perf_counter()
                model.set_input({"A": image})
                model.begin_step()
                with torch.no_grad(), model.autocast():
                    out = model.net_G(model.inputs["A"])
                out.float().cpu()   # the image leaves the device, as test.py saves it
                if round_ >= bench.warmup:
                    times[n].append(time.perf_counter() - start)
            torch.set_num_threads(default_threads)
            for n, request in runners.items():
                start = time.perf_counter()
                request()
                if round_ >= bench.warmup:
                    times[n].append(time.perf_counter() - start)
    names += outside
    base = median(times["eager_fp32"]) if "eager_fp32" in times else None
    lines = []
    for n in names:
        latency = median(times[n])
        lines.append({"bench": "infer", "machine": machine_name(device), "device": device.type,
                      "torch": torch.__version__, "netG": bench.netG, "batch_size": bench.batch_size,
                      "crop_size": bench.crop_size, "eval": bench.eval or n == "onnxruntime", "variant": n,
                      "latency_ms": round(latency * 1000, 2), "img_per_s": round(bench.batch_size / latency, 2),
                      "speedup_vs_eager_fp32": round(base / latency, 3) if base else None,
                      "steps": len(times[n]), "load_average": load_average()})
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    argv, extra = split_argv(argv)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--variants", default=None)
    p.add_argument("--netG", default="unet_256")
    p.add_argument("--batch_size", type=int, default=1)
    p.add_argument("--crop_size", type=int, default=256)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--eval", action="store_true", help="G in eval mode (running statistics, no dropout)")
    p.add_argument("--out", default=None, help="also append the JSON lines to this file")
    bench = p.parse_args(argv)
    if bench.device == "cuda" and not torch.cuda.is_available():
        print("infer_speed.py: error: --device cuda but CUDA is not available", file=sys.stderr)
        return 2
    unknown = [n for n in (bench.variants or "").split(",") if n and n not in VARIANTS and n not in OUTSIDE_TORCH]
    if unknown:
        print(f"infer_speed.py: error: unknown --variants {', '.join(unknown)}", file=sys.stderr)
        return 2
    emit(run(bench, extra), bench.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
