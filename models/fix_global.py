"""--niter_fix_global: which part of a coarse-to-fine generator trains in a given epoch.

The choice depends on the epoch alone and is applied before the epoch's first step, also when a
run resumes in the middle of one, so a resumed run trains exactly the parameters the
uninterrupted one did.
"""
from __future__ import annotations

import logging

from torch import nn

from engine.distributed import DistributedError

log = logging.getLogger(__name__)


def fix_global_for_epoch(net_G: nn.Module, epoch: int, niter_fix_global: int, distributed: bool) -> None:
    if niter_fix_global == 0:
        return
    fixed = epoch <= niter_fix_global
    if fixed and distributed:
        # DDP decides at wrapping time which parameters it waits for; a part that trains in some
        # epochs only would leave it waiting (or unsynchronized once it trains).
        raise DistributedError(f"--niter_fix_global {niter_fix_global}: epoch {epoch} trains with the global "
                               "generator fixed, which needs one process; train those epochs in one process, "
                               "then resume with several")
    net_G.fix_global(fixed)
    if fixed:
        log.info("epoch %d: the global generator is fixed, only the local enhancers train", epoch)
    elif epoch == niter_fix_global + 1:
        log.info("epoch %d: the whole generator trains from now on", epoch)
