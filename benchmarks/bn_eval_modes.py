"""Measure how batch norm's test-time behaviour changes facades results.

Trains a small pix2pix (unet_128, ngf/ndf 32, 128 px, batch 1) on facades labels -> photo,
then runs test.py on the 106 test pairs in each behaviour and prints one JSON line per
behaviour with mean L1 / PSNR / SSIM. Usage:

    python benchmarks/bn_eval_modes.py [--dataroot datasets/facades] [--steps 800]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.dataroot import add_dataroot_option, check_dataroot
from pix2pix_cli import driver_module

test_driver = driver_module("test")
train_driver = driver_module("train")

BEHAVIOURS = {
    "paper (train mode: batch stats, dropout on)": [],
    "--eval (running stats, no dropout)": ["--eval", "--bn_eval", "running"],
    "--eval --bn_eval batch (batch stats, no dropout)": ["--eval", "--bn_eval", "batch"],
    "--eval --bn_eval precise (recomputed stats, no dropout)": ["--eval", "--bn_eval", "precise",
                                                               "--bn_precise_batches", "200"],
}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_dataroot_option(p)
    p.add_argument("--steps", type=int, default=800)
    p.add_argument("--workdir", default=None)
    args = p.parse_args()
    check_dataroot("bn_eval_modes.py", args.dataroot)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bn_eval_"))
    common = ["--dataroot", str(args.dataroot), "--name", "bn", "--checkpoints_dir", str(work / "ck"),
              "--direction", "BtoA", "--netG", "unet_128", "--ngf", "32", "--ndf", "32", "--gpu_ids", "-1",
              "--num_threads", "1", "--seed", "0"]
    start = time.time()
    code = train_driver.main(common + ["--load_size", "142", "--crop_size", "128", "--max_steps", str(args.steps),
                                       "--display_id", "0", "--print_freq", "400", "--cache_dataset"])
    if code:
        return code
    print(json.dumps({"trained_steps": args.steps, "seconds": round(time.time() - start, 1)}))
    for i, (label, extra) in enumerate(BEHAVIOURS.items()):
        results = work / "results" / f"behaviour{i}"
        code = test_driver.main(common + ["--load_size", "128", "--crop_size", "128", "--num_test", "106",
                                          "--results_dir", str(results)] + extra)
        if code:
            return code
        metrics = json.loads(next(results.rglob("metrics.json")).read_text())["mean"]
        print(json.dumps({"behaviour": label, **{k: round(v, 4) for k, v in metrics.items()}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
