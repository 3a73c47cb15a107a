"""Training options for high resolution: memory (activation checkpointing) and the coarse-to-fine
schedule of ``--netG local`` (pix2pixHD)."""
from __future__ import annotations

import argparse

from options.base import non_negative_int


def add_highres_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("high resolution")
    g.add_argument("--grad_checkpoint", action="store_true",
                   help="activation checkpointing in G: keep only each stage's input for the backward pass and "
                        "recompute the rest there (lower peak memory, one more forward of G per step; same "
                        "gradients)")
    g.add_argument("--niter_fix_global", type=non_negative_int, default=0,
                   help="--netG local: for the first N epochs train only the local enhancers, with the global "
                        "generator's weights fixed; all of G trains afterwards (one process for those epochs)")


def fix_global_problem(opt: argparse.Namespace) -> str | None:
    """--niter_fix_global needs a generator with a global part."""
    if getattr(opt, "niter_fix_global", 0) and opt.netG != "local":
        return f"--niter_fix_global {opt.niter_fix_global} applies to --netG local only, got --netG {opt.netG}"
    return None
