"""Training speed of one configuration, every variant measured side by side in the same run.

    python benchmarks/train_speed.py                         # paper config, fp32 and bf16 on the CPU
    python benchmarks/train_speed.py --variants eager_fp32,bf16 --steps 10 -- --netG resnet_9blocks
    python benchmarks/train_speed.py --device cuda --batch_size 32

Everything after ``--`` is passed to train.py's option parser (so any configuration train.py
accepts can be measured). Prints one JSON line per variant (and appends it to ``--out``):
median s/step and images/s after a warm-up, the split into set_input / G forward / D step /
G backward / optimizer time, peak memory, FLOPs per step (torch.utils.flop_counter) and the
achieved FLOP/s against a matmul measured on the same machine, and the data loader's own rate.
The step timed is the model's own (Pix2PixModel.train_step); the split passes it a timer.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Sequence

import torch

from benchmarks.common import (BASELINES, TF32_VARIANTS, VARIANTS, PhaseTimer, Samples, Variant, build_model,
                               emit, load_average, machine_name, measured_peak_flops, median, peak_memory_mb,
                               reset_peak_memory, split_argv, step_flops, synchronize)
from benchmarks.dataroot import DOWNLOAD_SCRIPT, FACADES
from engine.distributed import Runtime
from models.base_model import BaseModel
from util.interleave import rotated

# The default CPU run is sized to end within 10 minutes on 2 busy cores: fp32 against bf16,
# the choice --amp makes; every other variant is one --variants away.
DEFAULT_VARIANTS = {"cpu": "eager_fp32,bf16",
                    "cuda": "eager_fp32,tf32,bf16,fp16,defaults,channels_last,bf16_channels_last,bf16_compile"}


def bench_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--dataroot", type=Path, default=FACADES,
                   help="aligned pairs for the loader's rate and train.py's options (default: datasets/facades)")
    p.add_argument("--variants", default=None, help=f"comma-separated, from: {', '.join(VARIANTS)}")
    p.add_argument("--netG", default="unet_256")
    p.add_argument("--batch_size", type=int, default=1)
    p.add_argument("--crop_size", type=int, default=256)
    p.add_argument("--warmup", type=int, default=1, help="rounds not timed (compile happens here)")
    p.add_argument("--steps", type=int, default=5, help="timed rounds (one step of every variant each)")
    p.add_argument("--split_steps", type=int, default=1, help="rounds of the phase-split measurement")
    p.add_argument("--loader_batches", type=int, default=10, help="batches for the loader-alone rate (0: skip)")
    p.add_argument("--no_flops", action="store_true", help="skip the FLOP count and the matmul peak")
    p.add_argument("--out", default=None, help="also append the JSON lines to this file")
    return p


def missing_dataroot(dataroot: Path) -> str | None:
    """The one-line hint when the data is not there, else None."""
    if dataroot.is_dir():
        return None
    hint = f" (bash {DOWNLOAD_SCRIPT} facades puts it there)" if dataroot == FACADES else ""
    return f"train_speed.py: error: --dataroot {dataroot}: no such folder{hint}"


def train_args(bench: argparse.Namespace, extra: Sequence[str]) -> list[str]:
    gpu = "0" if bench.device == "cuda" else "-1"
    load = bench.crop_size + bench.crop_size // 8   # the usual 286 for 256
    return ["--dataroot", str(bench.dataroot), "--gpu_ids", gpu, "--netG", bench.netG, "--batch_size",
            str(bench.batch_size), "--crop_size", str(bench.crop_size), "--load_size", str(load),
            "--display_id", "0", *extra]


def set_variant_backend(name: str, variant: Variant, device: torch.device, default_threads: int) -> None:
    torch.set_num_threads(variant.threads or default_threads)
    if device.type == "cuda":
        precision = "tf32" if name in TF32_VARIANTS else "ieee"
        torch.backends.cuda.matmul.fp32_precision = precision
        torch.backends.cudnn.conv.fp32_precision = precision
        torch.backends.cudnn.benchmark = True


def timed_step(model: BaseModel, batch: dict, device: torch.device) -> float:
    synchronize(device)
    start = time.perf_counter()
    model.set_input(batch)
    model.train_step()
    synchronize(device)
    return time.perf_counter() - start


def split_step(model: BaseModel, batch: dict, timer: PhaseTimer) -> None:
    """One step with each of its phases timed: the model's own step, given the timer."""
    timer("set_input", lambda: model.set_input(batch))
    model.train_step(timer)


def loader_rate(args: list[str], batches: int) -> dict:
    """Batches/s of the data loader alone, built as train.py builds it: with the configured
    workers, and in the main process (no prefetching to hide anything: the per-batch cost)."""
    from data import create_dataset
    from data.loader import create_dataloader, set_loader_epoch
    from options.configs import data_config
    from options.parse import parse_options

    opt = parse_options(args, is_train=True)
    dataset = create_dataset(opt.dataset_mode, data_config(opt))
    result: dict = {"cache_dataset": opt.cache_dataset}
    for workers in dict.fromkeys([opt.num_threads, 0]):
        loader = create_dataloader(dataset, opt.batch_size, shuffle=True, num_workers=workers, seed=0,
                                   pin_memory=opt.gpu_ids != [])
        times: list[float] = []
        epoch = 1
        while len(times) < batches + 2:
            set_loader_epoch(loader, epoch)
            start = time.perf_counter()
            for _ in loader:
                times.append(time.perf_counter() - start)
                if len(times) >= batches + 2:
                    break
                start = time.perf_counter()
            epoch += 1
        per_batch = median(times[2:])   # the first batches include worker start-up
        result[f"workers_{workers}"] = {"s_per_batch": round(per_batch, 5), "batches_per_s": round(1 / per_batch, 2)}
        del loader
    return result


def run(bench: argparse.Namespace, extra: Sequence[str]) -> list[dict]:
    device = torch.device("cuda" if bench.device == "cuda" else "cpu")
    runtime = Runtime(device=device)
    names = (bench.variants or DEFAULT_VARIANTS[device.type]).split(",")
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise SystemExit(f"train_speed.py: error: unknown --variants {', '.join(unknown)}; "
                         f"choose from {', '.join(VARIANTS)}")
    names = [n for n in names if device.type in VARIANTS[n].devices]
    args = train_args(bench, extra)
    default_threads = torch.get_num_threads()
    models = {n: build_model(args, VARIANTS[n], runtime) for n in names}
    shape = (bench.batch_size, 3, bench.crop_size, bench.crop_size)
    gen = torch.Generator().manual_seed(0)
    batch = {"A": torch.rand(shape, generator=gen) * 2 - 1, "B": torch.rand(shape, generator=gen) * 2 - 1}
    if device.type == "cuda":
        batch = {k: v.pin_memory() for k, v in batch.items()}

    samples = {n: Samples() for n in names}
    failures: dict[str, str] = {}
    for round_ in range(bench.warmup + bench.steps):
        for n in rotated(names, round_):
            if n in failures:
                continue
            set_variant_backend(n, VARIANTS[n], device, default_threads)
            try:
                seconds = timed_step(models[n], batch, device)
            except Exception as err:  # noqa: BLE001 - e.g. OOM at batch 32: record it, measure the rest
                failures[n] = str(err).splitlines()[0][:200]
                continue
            if round_ >= bench.warmup:
                samples[n].step.append(seconds)

    for _ in range(bench.split_steps):
        for n in names:
            if n in failures:
                continue
            set_variant_backend(n, VARIANTS[n], device, default_threads)
            timer = PhaseTimer(device)
            split_step(models[n], batch, timer)
            for phase, seconds in timer.times.items():
                samples[n].phases.setdefault(phase, []).append(seconds)

    memory: dict[str, dict] = {}
    for n in names:
        if n in failures:
            continue
        set_variant_backend(n, VARIANTS[n], device, default_threads)
        before = peak_memory_mb(device) if device.type == "cpu" else 0.0
        reset_peak_memory(device)
        timed_step(models[n], batch, device)
        peak = peak_memory_mb(device)
        memory[n] = {"peak_mb": round(peak, 1)}
        if device.type == "cpu":
            # RSS is the process's: it holds every variant's model, so the step's own rise says more.
            memory[n]["step_rise_mb"] = round(peak - min(before, peak), 1)
    torch.set_num_threads(default_threads)

    flops = peaks = None
    if not bench.no_flops and "eager_fp32" in models:
        set_variant_backend("eager_fp32", VARIANTS["eager_fp32"], device, default_threads)
        flops = step_flops(lambda: (models["eager_fp32"].set_input(batch), models["eager_fp32"].train_step()))
        peaks = {"fp32": measured_peak_flops(device, torch.float32),
                 "bf16": measured_peak_flops(device, torch.bfloat16)}
        if device.type == "cuda":
            set_variant_backend("tf32", VARIANTS["tf32"], device, default_threads)
            peaks["tf32"] = measured_peak_flops(device, torch.float32)
    loader = loader_rate(args, bench.loader_batches) if bench.loader_batches else None

    baseline = next((b for b in BASELINES if samples.get(b) and samples[b].step), None)
    base = median(samples[baseline].step) if baseline else None
    lines = []
    for n in names:
        record: dict = {"bench": "train", "machine": machine_name(device), "device": device.type,
                        "torch": torch.__version__, "netG": bench.netG, "batch_size": bench.batch_size,
                        "crop_size": bench.crop_size, "train_options": list(extra), "variant": n,
                        "variant_options": list(VARIANTS[n].options), "threads": VARIANTS[n].threads or default_threads,
                        "load_average": load_average()}
        if n in failures:
            record["error"] = failures[n]
            lines.append(record)
            continue
        s = median(samples[n].step)
        record.update({"steps": len(samples[n].step), "s_per_step": round(s, 4),
                       "s_per_step_all": [round(x, 4) for x in samples[n].step],
                       "img_per_s": round(bench.batch_size / s, 3),
                       "baseline": baseline, "speedup_vs_baseline": round(base / s, 3) if base else None,
                       "split_s": {k: round(median(v), 4) for k, v in samples[n].phases.items()},
                       "memory": memory.get(n)})
        if flops:
            record["gflop_per_step"] = round(flops / 1e9, 2)
            record["achieved_gflop_s"] = round(flops / s / 1e9, 1)
            record["matmul_peak_gflop_s"] = {k: round(v / 1e9, 1) for k, v in peaks.items()}
            ceiling = peaks["bf16" if models[n].amp == "bf16" else "tf32" if n in TF32_VARIANTS and device.type == "cuda"
                            else "fp32"]
            record["fraction_of_matmul_peak"] = round(flops / s / ceiling, 3)
        if loader:
            record["loader"] = loader
            # How many batches the loader delivers in the time of one step (target: >= 3).
            record["loader_to_step_rate"] = {k: round(v["batches_per_s"] * s, 1)
                                             for k, v in loader.items() if k.startswith("workers_")}
        lines.append(record)
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    argv, extra = split_argv(argv)
    bench = bench_parser().parse_args(argv)
    problem = missing_dataroot(bench.dataroot)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    if bench.device == "cuda" and not torch.cuda.is_available():
        print("train_speed.py: error: --device cuda but CUDA is not available", file=sys.stderr)
        return 2
    emit(run(bench, extra), bench.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
