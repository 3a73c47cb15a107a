"""Whether a network can train on an input of a given size, asked of the network itself.

A PatchGAN halves its input at each stride-2 layer (and a multiscale D once more per scale), a
ResNet generator twice; a normalization layer in training mode needs more than one value per
channel, and a conv a map at least as large as its kernel. Rather than a second description of
each family's arithmetic, the network itself is built and run once in training mode on a batch of
one, on the CPU: whatever torch refuses there, it would refuse at the first step. It is built one
channel wide (``ngf``/``ndf`` 1): none of these rules depends on the width, and a forward of a
one-channel U-Net at 256 px takes milliseconds. (torch's ``meta`` device would need no
computation at all, but its first use costs about a second of imports, paid by every start-up.)
"""
from __future__ import annotations

import dataclasses
from functools import lru_cache

import torch

from models.networks.spec import NetSpec
from models.norms import NORMS

_SYNCED = "syncbatch"


_WIDTHS = ("ngf", "ndf")
# The largest side tried when looking for the smallest one a network takes; past it the probe
# gives up (the failure is then not about size).
SEARCH_LIMIT = 4096


def _probe_spec(spec: NetSpec) -> NetSpec:
    changes: dict[str, object] = {name: 1 for name in _WIDTHS if hasattr(spec, name)}
    # The synced batch norm reduces across processes in training mode; the plain one has the
    # same size rule (more than one value per channel) and no collective.
    norm = getattr(spec, "norm", None)
    if norm is not None and NORMS.canonical(norm) == _SYNCED:
        changes["norm"] = "batch"
    return dataclasses.replace(spec, **changes)


@lru_cache(maxsize=256)
def runs_at(spec: NetSpec, height: int, width: int) -> bool:
    """Does a training-mode forward of ``spec``'s network on one ``height`` x ``width`` input
    (``spec.input_nc`` channels) go through?"""
    with torch.random.fork_rng(devices=[]):   # building and dropout draw numbers: not the run's
        net = _probe_spec(spec).build()
        net.train()
        try:
            with torch.no_grad():
                net(torch.zeros(1, spec.input_nc, height, width))
        except (RuntimeError, ValueError, NotImplementedError):
            return False
    return True


def smallest_square(spec: NetSpec, start: int, step: int, limit: int = SEARCH_LIMIT) -> int | None:
    """The smallest side in ``start``, ``start + step``, ... up to ``limit`` whose square input
    ``spec``'s network takes (None: none does, so the probe cannot tell; the caller lets the run
    go on rather than refuse it on a guess)."""
    for side in range(start, limit + 1, step):
        if runs_at(spec, side, side):
            return side
    return None
