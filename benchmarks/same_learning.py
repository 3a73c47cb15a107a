"""Same learning: a short facades run per speed variant, loss curves against plain fp32.

    python benchmarks/same_learning.py --variants eager_fp32,bf16 --steps 200
    python benchmarks/same_learning.py --device cuda --variants eager_fp32,bf16,fp16,bf16_compile

All variants train in lockstep on the same batches (one loader), and every step starts from
the same RNG state (same dropout masks), so the only difference is the option. The curves are
compared as means over windows of ``--window`` steps (single GAN steps are too noisy to
compare one by one): prints one JSON line per variant with the windowed means, the largest
relative difference from eager_fp32 per loss, and whether it is within ``--tolerance``.
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

import torch

from benchmarks.common import VARIANTS, build_model, emit, machine_name, split_argv
from benchmarks.dataroot import add_dataroot_option, check_dataroot
from data import create_dataset
from data.loader import create_dataloader, set_loader_epoch
from options.configs import data_config
from options.parse import parse_options
from engine.distributed import Runtime



def windows(values: list[float], size: int) -> list[float]:
    return [sum(values[i:i + size]) / len(values[i:i + size]) for i in range(0, len(values), size)]


def compare(means: dict[str, list[float]], reference: dict[str, list[float]], rel_tol: float,
            abs_tol: float) -> dict:
    """Each window mean must be within rel_tol (relative) or abs_tol (absolute) of fp32's."""
    rel = {k: max(abs(a - b) / max(abs(b), 1e-8) for a, b in zip(means[k], reference[k])) for k in reference}
    absolute = {k: max(abs(a - b) for a, b in zip(means[k], reference[k])) for k in reference}
    ok = all(abs(a - b) <= max(rel_tol * abs(b), abs_tol)
             for k in reference for a, b in zip(means[k], reference[k]))
    return {"window_means": means, "max_rel_diff_vs_fp32": {k: round(v, 4) for k, v in rel.items()},
            "max_abs_diff_vs_fp32": {k: round(v, 4) for k, v in absolute.items()},
            "tolerance": {"rel": rel_tol, "abs": abs_tol}, "within_tolerance": ok}


def main(argv: Sequence[str] | None = None) -> int:
    argv, extra = split_argv(argv)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--variants", default="eager_fp32,bf16")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--window", type=int, default=50)
    p.add_argument("--tolerance", type=float, default=0.05, help="largest relative difference of a window mean")
    p.add_argument("--abs_tolerance", type=float, default=0.05,
                   help="...or absolute difference: D's losses near 0.1 make relative ones meaningless")
    add_dataroot_option(p)
    p.add_argument("--out", default=None)
    bench = p.parse_args(argv)
    check_dataroot("same_learning.py", bench.dataroot)
    names = bench.variants.split(",")
    if names[0] != "eager_fp32" or any(n not in VARIANTS for n in names):
        print("same_learning.py: error: --variants must start with eager_fp32 and name known variants "
              f"({', '.join(VARIANTS)})", file=sys.stderr)
        return 2
    device = torch.device(bench.device)
    args = ["--dataroot", str(bench.dataroot), "--gpu_ids", "0" if device.type == "cuda" else "-1",
            "--display_id", "0", "--num_threads", "0", "--cache_dataset", *extra]
    models = {n: build_model(args, VARIANTS[n], Runtime(device=device), seed=0) for n in names}
    opt = parse_options(args, is_train=True)
    loader = create_dataloader(create_dataset(opt.dataset_mode, data_config(opt)), opt.batch_size, shuffle=True,
                               num_workers=0, seed=0)
    curves: dict[str, dict[str, list[float]]] = {n: {} for n in names}
    default_threads = torch.get_num_threads()
    step, epoch = 0, 1
    while step < bench.steps:
        set_loader_epoch(loader, epoch)
        for batch in loader:
            for n in names:
                torch.set_num_threads(VARIANTS[n].threads or default_threads)
                torch.manual_seed(1000 + step)   # identical dropout masks in every variant
                models[n].set_input(batch)
                for k, v in models[n].train_step().items():
                    curves[n].setdefault(k, []).append(float(v))
            step += 1
            if step >= bench.steps:
                break
        epoch += 1
    torch.set_num_threads(default_threads)

    reference = {k: windows(v, bench.window) for k, v in curves["eager_fp32"].items()}
    emit(({"bench": "same_learning", "machine": machine_name(device), "variant": n, "steps": bench.steps,
           "window": bench.window, "train_options": extra,
           **compare({k: windows(v, bench.window) for k, v in curves[n].items()}, reference,
                     bench.tolerance, bench.abs_tolerance)} for n in names), bench.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
