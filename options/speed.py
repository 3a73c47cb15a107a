"""Speed options. Defaults are the fastest on the CPUs in benchmarks/README.md; every option
keeps what the model learns the same within the tolerances stated there."""
from __future__ import annotations

import argparse

from options.base import choices_help, non_negative_int
from engine.speed import AMP_MODES, COMPILE_MODES


def add_speed_options(p: argparse.ArgumentParser, is_train: bool = True) -> None:
    g = p.add_argument_group("speed")
    # Training defaults to auto: bf16 only where a short probe finds it faster than fp32 for the
    # run's networks, because that depends on the CPU and the image size (and bf16 learns the
    # same within the stated tolerance); inference stays fp32 by default so results match the
    # network exactly.
    g.add_argument("--amp", default="auto" if is_train else "none", choices=AMP_MODES.choices(),
                   help=choices_help(AMP_MODES, "mixed precision:"))
    g.add_argument("--compile", action="store_true",
                   help="torch.compile G and D (falls back to eager with one warning when it cannot compile)")
    g.add_argument("--compile_mode", default="auto", choices=list(COMPILE_MODES),
                   help="auto: reduce-overhead (CUDA graphs) on CUDA, default on CPU")
    g.add_argument("--channels_last", action="store_true",
                   help="NHWC memory format for the networks and inputs (helps on GPUs with tensor cores)")
    g.add_argument("--torch_threads", type=non_negative_int, default=0,
                   help="intra-op CPU threads (0: torch's default, one per core)")
    g.add_argument("--no_cudnn_benchmark", action="store_true", help="don't let cuDNN time its algorithms")
    g.add_argument("--no_tf32", action="store_true", help="full fp32 matmuls/convolutions on Ampere+ GPUs")
