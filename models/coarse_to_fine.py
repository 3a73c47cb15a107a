"""Training ``--netG local`` coarse to fine: which part trains in a given epoch
(``--niter_fix_global``) and starting G1 from a trained ``--netG global`` (``--init_global_from``).

What trains depends on the epoch alone and is applied before the epoch's first step, also when a
run resumes in the middle of one, so a resumed run trains exactly the parameters the
uninterrupted one did.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable, Mapping

from torch import nn

from engine.checkpoint.files import CheckpointError
from engine.checkpoint.generator import find_generator

log = logging.getLogger(__name__)


def fix_global_for_epoch(net_G: nn.Module, epoch: int, niter_fix_global: int) -> None:
    """Fix G1 in the first ``niter_fix_global`` epochs, train it from the next one on. Under DDP
    the model wraps G again when its trainable set changes (BaseModel.begin_epoch)."""
    if niter_fix_global == 0:
        return
    fixed = epoch <= niter_fix_global
    net_G.fix_global(fixed)
    if fixed:
        log.info("epoch %d: the global generator is fixed, only the local enhancers train", epoch)
    elif epoch == niter_fix_global + 1:
        log.info("epoch %d: the whole generator trains from now on", epoch)


def init_global_from(net_G: nn.Module, exp_dir: Path,
                     specs_of_options: Callable[[Mapping[str, Any]], dict[str, dict]]) -> None:
    """Load the ``latest`` generator of the ``--netG global`` run in ``exp_dir`` into the global
    part of ``net_G`` (its head, which the local generator does not have, left out). Raises
    CheckpointError naming the option and the first field that does not fit."""
    option = f"--init_global_from {exp_dir.name}"
    saved = find_generator(exp_dir, "latest", specs_of_options)
    if saved.spec is None or saved.spec["family"] != "global":
        kind = "a reference generator" if saved.spec is None else f"a --netG {saved.spec['name']} generator"
        raise CheckpointError(f"{option}: {saved.path} holds {kind}, not one trained with --netG global")
    for key, wanted in net_G.spec.global_fields().items():
        had = saved.spec["fields"].get(key)
        if had != wanted:
            raise CheckpointError(f"{option}: it was trained with {key} {had}, the global part of this --netG local "
                                  f"needs {wanted} (its ngf is --ngf x 2**n_local_enhancers)")
    net_G.global_generator.load_state_dict({k: v for k, v in saved.state_dict.items() if not k.startswith("head.")})
    log.info("global generator initialized from %s", saved.path)
