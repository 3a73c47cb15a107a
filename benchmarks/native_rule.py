"""The whole training step under other native-kernel rules than this CPU's (models/networks/conv.py).

conv_backward.py times each layer's backward alone; this times what the rule is for, the model's
own training step (the `--amp auto` probe step, both Adam steps included), with the U-Net's
transposed convolutions native up to input side T and its down convolutions native up to output
side D, for each T:D given, interleaved round after round. ``cpu`` is the rule this process
takes (which an ISA cap such as DNNL_MAX_CPU_ISA=AVX2 changes, engine/machine.py).

    python -m benchmarks.native_rule --config small --rules cpu,8:8,8:1,8:0,4:1,16:1,0:1 --rounds 30
"""
from __future__ import annotations

import argparse
import statistics
from typing import Callable

import torch

from benchmarks.bf16_layouts import CONFIGS, config_model
from benchmarks.common import emit
from engine.amp_auto import measure, probe_step
from engine.distributed import unwrap
from models.networks.conv import (TRANSPOSED_MAX_IN_SIDE, default_down_max_out_side, set_down_max_out_side,
                                  set_transposed_max_in_side)


def parse_rule(text: str) -> tuple[int, int]:
    """'cpu' or 'T:D' (two whole numbers) -> (transposed max input side, down max output side);
    ValueError for anything else."""
    if text == "cpu":
        return TRANSPOSED_MAX_IN_SIDE, default_down_max_out_side()
    transposed, _, down = text.partition(":")
    if not (transposed.isdigit() and down.isdigit()):
        raise ValueError(f"{text!r} is neither 'cpu' nor T:D with two whole numbers")
    return int(transposed), int(down)


def build(config: str, amp: str, transposed_max: int, down_max: int) -> Callable[[], None]:
    model, batch = config_model(config)
    set_down_max_out_side(unwrap(model.net_G), down_max)
    set_transposed_max_in_side(unwrap(model.net_G), transposed_max)
    return probe_step(model, batch, amp, torch.device("cpu"))


def run(args: argparse.Namespace) -> list[dict]:
    names = args.rules.split(",")
    rules = {name: parse_rule(name) for name in names}
    # amp_auto's own clock: a warm-up each, then the rules in a rotating order, round after round.
    times = measure({name: build(args.config, args.amp, *rule) for name, rule in rules.items()}, args.rounds)
    base = statistics.median(times[names[0]])
    return [{"bench": "native_rule", "config": args.config, "amp": args.amp, "rule": name,
             "transposed_max_in_side": rules[name][0], "down_max_out_side": rules[name][1],
             "s_per_step": round(statistics.median(t), 4), "vs_first": round(statistics.median(t) / base, 3),
             "faster_rounds_than_first": sum(x < y for x, y in zip(t, times[names[0]])),
             "rounds": args.rounds, "per_round_s": [round(x, 4) for x in t]} for name, t in times.items()]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="small", choices=list(CONFIGS))
    p.add_argument("--amp", default="none", choices=["none", "bf16"])
    p.add_argument("--rules", default="cpu,8:8,8:1,8:0,4:1,16:1,0:1",
                   help="comma-separated, the first is the baseline: 'cpu' (this process's rule) or T:D")
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--out", help="append the JSON lines to this file")
    args = p.parse_args(argv)
    try:
        for text in args.rules.split(","):
            parse_rule(text)
    except ValueError as err:
        p.error(f"--rules: {err}")
    emit(run(args), args.out)


if __name__ == "__main__":
    main()
