"""Batch-1 generator latency in fp32, bf16 and bf16 + NHWC, and how far bf16's 8-bit output
is from fp32's (issue 15, inference): a faster dtype is only a fair default when the written
images stay within one level of fp32's.

The generator comes from ``--generator`` (a ``*_net_G.pt`` file written by train.py) or is
freshly initialized (``--netG``, ``--ngf``). Inputs are real facades images, resized to
``--size``. Variants are timed interleaved, median per variant; levels are compared on the
quantized outputs (``reporting.images.quantize``, what test.py and translate.py write).

    python benchmarks/infer_dtypes.py --generator checkpoints/facades/latest_net_G.pt --size 256
"""
from __future__ import annotations

import argparse
import copy
import statistics
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from benchmarks.common import emit
from benchmarks.dataroot import add_dataroot_option, check_dataroot
from models.init import init_weights
from models.networks import architecture_from_options, build_generator, spec_from_dict
from reporting.images import quantize
from util.interleave import rotated

VARIANTS = {"fp32": (None, False), "bf16": (torch.bfloat16, False), "bf16_nhwc": (torch.bfloat16, True)}


def generator(args: argparse.Namespace) -> tuple[torch.nn.Module, str]:
    if args.generator:
        saved = torch.load(args.generator, map_location="cpu", weights_only=True)
        # Version 1 files kept only the options: their spec comes from those.
        spec = spec_from_dict("G", saved.get("spec") or architecture_from_options(saved["options"])["G"])
        net = spec.build()
        net.load_state_dict(saved["net_G"])
        return net, f"{args.generator} ({spec.name}, ngf {spec.ngf})"
    torch.manual_seed(0)
    net = build_generator(args.netG, input_nc=3, output_nc=3, ngf=args.ngf, norm="batch", dropout=True)
    return init_weights(net, "normal", 0.02), f"{args.netG}, ngf {args.ngf}, freshly initialized"


def images(dataroot: Path, count: int, size: int) -> list[torch.Tensor]:
    """The B half of facades test pairs (the photo side the BtoA models take as input)."""
    out = []
    for path in sorted((dataroot / "test").glob("*.jpg"))[:count]:
        pair = torch.from_numpy(np.array(Image.open(path).convert("RGB"))).permute(2, 0, 1)
        half = pair[:, :, pair.shape[2] // 2:].float() / 127.5 - 1
        out.append(F.interpolate(half[None], size=(size, size), mode="bilinear", align_corners=False))
    return out


def run(args: argparse.Namespace) -> list[dict]:
    net, described = generator(args)
    # Eval mode: dropout off, so the variants differ by arithmetic alone (test.py's default train
    # mode draws new dropout masks per call; its per-image batch statistics cost the same).
    net.eval()
    inputs = images(args.dataroot, args.images, args.size)
    nhwc_net = copy.deepcopy(net).to(memory_format=torch.channels_last)

    def forward(name: str, x: torch.Tensor) -> torch.Tensor:
        dtype, nhwc = VARIANTS[name]
        model = nhwc_net if nhwc else net
        if nhwc:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.no_grad(), torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
            return model(x).float()

    reference = [quantize(forward("fp32", x)) for x in inputs]
    level = {}
    for name in VARIANTS:
        diffs = [(quantize(forward(name, x)).int() - r.int()).abs() for x, r in zip(inputs, reference)]
        level[name] = {"max_levels": int(max(d.max() for d in diffs)),
                       "share_over_1_level": round(float(sum((d > 1).sum() for d in diffs)) /
                                                   sum(d.numel() for d in diffs), 5)}
    times: dict[str, list[float]] = {n: [] for n in VARIANTS}
    names = list(VARIANTS)
    for r in range(args.rounds):
        for name in rotated(names, r):
            start = time.perf_counter()
            forward(name, inputs[r % len(inputs)])
            times[name].append(time.perf_counter() - start)
    base = statistics.median(times["fp32"])
    return [{"bench": "infer_dtypes", "device": "cpu", "generator": described, "size": args.size, "batch": 1,
             "variant": name, "latency_ms": round(statistics.median(t) * 1000, 1),
             "vs_fp32": round(base / statistics.median(t), 3), "images_compared": len(inputs), **level[name],
             "rounds": args.rounds} for name, t in times.items()]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--generator", help="a *_net_G.pt file written by train.py")
    p.add_argument("--netG", default="unet_256")
    p.add_argument("--ngf", type=int, default=64)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--images", type=int, default=8, help="facades test images compared")
    p.add_argument("--rounds", type=int, default=15)
    add_dataroot_option(p)
    p.add_argument("--out", help="append the JSON lines to this file")
    args = p.parse_args(argv)
    check_dataroot("infer_dtypes.py", args.dataroot)
    emit(run(args), args.out)


if __name__ == "__main__":
    main()
