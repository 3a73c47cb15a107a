"""Per layer of a U-Net generator: backward time through oneDNN against torch's native kernels.

    python benchmarks/conv_backward.py                         # unet_128 ngf 32 at 128 px, unet_256 at 256 px
    python benchmarks/conv_backward.py --configs unet_256:64:256

The evidence for models/networks/conv.py's rule (which layers take the native backward). The
layers and their input shapes are read from a real generator with forward hooks; each layer's
backward (input and weight gradients, batch 1, fp32) is timed with oneDNN on and off,
interleaved, median of ``--repeats``. One JSON line per layer, with the rule's choice.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Sequence

import torch
from torch import nn

from benchmarks.common import emit
from models.networks import build_generator
from models.networks.conv import Conv2d, ConvTranspose2d, set_down_max_out_side



def layer_inputs(net_g: str, ngf: int, side: int, down_max: int | None = None) -> list[tuple[str, nn.Module, torch.Size]]:
    net = build_generator(net_g, input_nc=3, output_nc=3, ngf=ngf, norm="batch", dropout=False)
    if down_max is not None:   # else the rule for this CPU
        set_down_max_out_side(net, down_max)
    found: list[tuple[str, nn.Module, torch.Size]] = []
    hooks = [m.register_forward_hook(lambda m, args, out, name=name: found.append((name, m, args[0].shape)))
             for name, m in net.named_modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    with torch.no_grad():
        net(torch.randn(1, 3, side, side))
    for hook in hooks:
        hook.remove()
    return found


def backward_ms(layer: nn.Module, shape: torch.Size, onednn: bool, repeats: int) -> list[float]:
    x = torch.randn(shape, requires_grad=True)
    # torch's own forward (not the subclass's), so the backward is torch's and the switch decides.
    plain_forward = nn.ConvTranspose2d.forward if isinstance(layer, nn.ConvTranspose2d) else nn.Conv2d.forward
    y = plain_forward(layer, x)
    grad = torch.randn_like(y)
    times = []
    previous = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = onednn
    try:
        for _ in range(repeats):
            start = time.perf_counter()
            torch.autograd.grad(y, (x, layer.weight), grad, retain_graph=True)
            times.append((time.perf_counter() - start) * 1e3)
    finally:
        torch.backends.mkldnn.enabled = previous
    return times


def run(args: argparse.Namespace) -> list[dict]:
    records = []
    for config in args.configs.split(","):
        net_g, ngf, side = config.split(":")
        for name, layer, shape in layer_inputs(net_g, int(ngf), int(side), args.down_max_out_side):
            samples: dict[str, list[float]] = {"onednn": [], "native": []}
            for round_ in range(args.rounds):   # interleaved, so a load change hits both
                for which in (("onednn", "native") if round_ % 2 == 0 else ("native", "onednn")):
                    samples[which] += backward_ms(layer, shape, which == "onednn", args.repeats)[1:]
            med = {k: statistics.median(v) for k, v in samples.items()}
            x = torch.randn(shape, requires_grad=True)
            rule = isinstance(layer, (Conv2d, ConvTranspose2d)) and type(layer(x).grad_fn).__name__.startswith(
                "_NativeKernelConv")
            records.append({"bench": "conv_backward", "config": config, "layer": name, "kind": type(layer).__name__,
                            "weight": list(layer.weight.shape), "input": list(shape),
                            "onednn_ms": round(med["onednn"], 3), "native_ms": round(med["native"], 3),
                            "native_vs_onednn": round(med["native"] / med["onednn"], 2), "rule_takes_native": rule})
    return records


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--configs", default="unet_128:32:128,unet_256:64:256", help="netG:ngf:side, comma-separated")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--repeats", type=int, default=6, help="timed backward passes per round (first dropped)")
    p.add_argument("--down_max_out_side", type=int,
                   help="the largest down-convolution output side the rule takes native (default: this CPU's rule)")
    p.add_argument("--out", help="append the JSON lines to this file")
    args = p.parse_args(argv)
    emit(run(args), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
