"""Training options for high resolution: memory (activation checkpointing) and the coarse-to-fine
schedule of ``--netG local`` (pix2pixHD)."""
from __future__ import annotations

import argparse

from models.networks import GENERATORS, generator_spec
from models.networks.local_enhancer import LocalEnhancerSpec
from options.base import non_negative_int


def add_highres_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("high resolution")
    g.add_argument("--grad_checkpoint", action="store_true",
                   help="activation checkpointing in G: keep only each stage's input for the backward pass and "
                        "recompute the rest there (lower peak memory, one more forward of G per step; same "
                        "gradients)")
    g.add_argument("--niter_fix_global", type=non_negative_int, default=0,
                   help="--netG local: for the first N epochs train only the local enhancers, with the global "
                        "generator's weights fixed; all of G trains afterwards")
    g.add_argument("--init_global_from", default=None, metavar="NAME",
                   help="--netG local: start the global generator from the latest generator of experiment NAME "
                        "(in --checkpoints_dir), trained with --netG global at half the size")


def fix_global_problem(opt: argparse.Namespace) -> str | None:
    """--niter_fix_global and --init_global_from need a generator with a global part: a
    coarse-to-fine one (``LocalEnhancerSpec``), whichever preset names it."""
    for option in ("niter_fix_global", "init_global_from"):
        value = getattr(opt, option, None)
        if value and not isinstance(generator_spec(opt), LocalEnhancerSpec):
            presets = " or ".join(e.name for e in GENERATORS if e.obj.spec is LocalEnhancerSpec)
            return f"--{option} {value} applies to --netG {presets} only, got --netG {opt.netG}"
    return None
