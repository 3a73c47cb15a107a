"""The whole benchmark matrix in one command, JSON lines to one file.

    python benchmarks/run_matrix.py --device cuda --out benchmarks/results/gpu.jsonl   # < 8 min on an H100
    python benchmarks/run_matrix.py --device cpu  --out benchmarks/results/cpu.jsonl   # slow: ~30-60 min

unet_256 and resnet_9blocks; batch 1 and 4 (and 32 on CUDA); every variant of the device,
interleaved within each configuration; then inference at batch 1. A time budget stops the
matrix cleanly (the skipped configurations are written as such) so that it always finishes.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from benchmarks import infer_speed
from benchmarks import train_speed

MATRIX = {
    # (netG, batch) -> per-config overrides
    "cuda": {"batches": (1, 4, 32), "variants": "eager_fp32,tf32,bf16,fp16,channels_last,bf16_channels_last,"
                                                "bf16_compile", "steps": 12, "warmup": 3},
    "cpu": {"batches": (1, 4), "variants": "plain_fp32,eager_fp32,bf16,threads1,native_bn,channels_last",
            "steps": 5, "warmup": 1},
}
NETS = ("unet_256", "resnet_9blocks")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda", choices=["cpu", "cuda"])
    p.add_argument("--out", required=True)
    p.add_argument("--budget_s", type=float, default=450.0, help="stop starting new configurations after this")
    args = p.parse_args()
    plan = MATRIX[args.device]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()

    def write(record: dict) -> None:
        with out.open("a") as f:
            f.write(json.dumps(record) + "\n")
        print(json.dumps(record), flush=True)

    # Inference first: it is quick and its latency is a README figure.
    for net in NETS:
        bench = argparse.Namespace(device=args.device, variants=None, netG=net, batch_size=1, crop_size=256,
                                   warmup=3, steps=20, eval=False, out=None)
        for record in infer_speed.run(bench, []):
            write(record)
    for batch in plan["batches"]:
        for net in NETS:
            if time.perf_counter() - start > args.budget_s:
                write({"bench": "train", "netG": net, "batch_size": batch, "skipped": "time budget"})
                continue
            bench = train_speed.bench_parser().parse_args([
                "--device", args.device, "--netG", net, "--batch_size", str(batch), "--variants", plan["variants"],
                "--steps", str(plan["steps"]), "--warmup", str(plan["warmup"]), "--split_steps", "2",
                # The loader's rate needs measuring once per batch size, not per network, and
                # needs the facades set (datasets/download_pix2pix_dataset.sh facades).
                "--loader_batches", "20" if net == NETS[0] and train_speed.FACADES.is_dir() else "0"])
            extra = ["--num_threads", "4", "--cache_dataset"] if args.device == "cuda" else ["--num_threads", "0"]
            for record in train_speed.run(bench, extra):
                record["elapsed_s"] = round(time.perf_counter() - start, 1)
                write(record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
