"""The U-Net's native transposed forward (models/networks/conv.py, ``_transposed_forward``: the
input's pixels times the weight as stored, then a fold) against ``aten.slow_conv_transpose2d``
(the weight transposed), in the model's own training step, interleaved round after round.

    python -m benchmarks.transposed_forward --config paper --amp bf16 --rounds 20
"""
from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

import torch

import train  # noqa: F401 - the allocator and OpenMP settings train.py runs with
from benchmarks.bf16_layouts import CONFIGS, config_model
from benchmarks.common import emit
from engine.amp_auto import probe_step
from models.networks import conv

Forward = Callable[..., torch.Tensor]


def aten_forward(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, kernel: list[int],
                 stride: list[int], padding: list[int], output_padding: list[int]) -> torch.Tensor:
    return torch.ops.aten.slow_conv_transpose2d(x, weight, kernel, bias, stride, padding, output_padding, [1, 1])


def run(args: argparse.Namespace) -> list[dict]:
    forwards: dict[str, Forward] = {"ours": conv._transposed_forward, "aten": aten_forward}
    model, batch = config_model(args.config)
    step = probe_step(model, batch, args.amp, torch.device("cpu"))
    times: dict[str, list[float]] = {name: [] for name in forwards}
    try:
        for forward in forwards.values():   # warm-up, each
            conv._transposed_forward = forward
            step()
        for r in range(args.rounds):
            order = list(forwards) if r % 2 == 0 else list(reversed(forwards))
            for name in order:
                conv._transposed_forward = forwards[name]
                start = time.perf_counter()
                for _ in range(args.steps):
                    step()
                times[name].append((time.perf_counter() - start) / args.steps)
    finally:
        conv._transposed_forward = forwards["ours"]
    base = statistics.median(times["aten"])
    return [{"bench": "transposed_forward", "config": args.config, "amp": args.amp, "forward": name,
             "s_per_step": round(statistics.median(t), 4), "vs_aten": round(statistics.median(t) / base, 3),
             "faster_rounds_than_aten": sum(a < b for a, b in zip(t, times["aten"])), "rounds": args.rounds,
             "steps_per_round": args.steps, "per_round_s": [round(x, 4) for x in t]} for name, t in times.items()]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="paper", choices=list(CONFIGS))
    p.add_argument("--amp", default="none", choices=["none", "bf16"])
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--steps", type=int, default=2, help="training steps per variant and round")
    p.add_argument("--out", help="append the JSON lines to this file")
    args = p.parse_args(argv)
    emit(run(args), args.out)


if __name__ == "__main__":
    main()
