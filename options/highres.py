"""Training options for high resolution: memory (activation checkpointing) and the coarse-to-fine
schedule of ``--netG local`` (pix2pixHD)."""
from __future__ import annotations

import argparse

from engine.distributed import launch_env
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
                        "generator's weights fixed; all of G trains afterwards (one process for those epochs)")
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


def _processes(opt: argparse.Namespace) -> int:
    """How many processes will train: the launcher's (torchrun, a child of --nproc), else what
    train.py starts (engine/launch.py: --nproc, else one per --gpu_ids entry)."""
    env = launch_env()
    if env is not None:
        return env.world_size
    return getattr(opt, "nproc", 0) or max(len(getattr(opt, "gpu_ids", None) or ()), 1)


def fix_global_processes_problem(opt: argparse.Namespace) -> str | None:
    """A fresh run with --niter_fix_global starts with the global generator fixed, which DDP
    cannot do (models/coarse_to_fine.py); said here, before any process builds a network. A
    resume's first epoch is known only from its checkpoint, which the epoch's start checks."""
    fixed = getattr(opt, "niter_fix_global", 0)
    if not fixed or getattr(opt, "continue_train", None) or fixed < getattr(opt, "epoch_count", 1):
        return None
    processes = _processes(opt)
    if processes == 1:
        return None
    return (f"--niter_fix_global {fixed}: the first {fixed} epoch(s) train with the global generator fixed, which "
            f"needs one process, not {processes}; train them in one process, then resume with several")
