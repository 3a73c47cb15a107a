"""Whether the smallest training sample is large enough for the networks, checked at start-up.

With ``--preprocess pad`` or ``none`` every sample keeps (about) its stored size, so a small
file would otherwise fail at its first step, deep in a conv or a batch norm of one pixel, after
the experiment folder is written. The dataset knows each sample's size from the files' headers
(``sample_sizes()``); the networks say what they take (models/networks/min_size.py).
"""
from __future__ import annotations

import logging
from typing import Any

from models.networks import DISCRIMINATORS, generator_spec
from models.networks.min_size import runs_at, smallest_square
from models.networks.spec import NetSpec
from options.base import Options
from util.errors import OptionError

log = logging.getLogger("train")

# Larger samples are probed at this side first (the probe's cost grows with the pixels).
CHEAP_SIDE = 512


def _smallest_sample(sizes: list[tuple[int, int]]) -> int:
    """The index of the sample with the shortest side (of two, the smaller one)."""
    return min(range(len(sizes)), key=lambda i: (min(sizes[i]), max(sizes[i])))


def _described(option: str, spec: NetSpec) -> str:
    fields = [f"--num_D {spec.num_D}"] if getattr(spec, "num_D", 1) > 1 else []
    return " ".join([f"{option} {spec.name}", *fields])


def _remedies(spec: NetSpec, needed: int) -> str:
    remedies = ["larger images"]
    n_layers = getattr(spec, "n_layers", 0)
    if n_layers > 1:
        layers = f"--n_layers_D {n_layers - 1}"
        remedies.append(f"fewer layers ({'--netD n_layers ' if spec.name == 'basic' else ''}{layers})")
    if getattr(spec, "num_D", 1) > 1:
        remedies.append(f"a lower --num_D ({spec.num_D - 1})")
    remedies.append(f"--preprocess resize_and_crop with --crop_size {needed} or more")
    return ", ".join(remedies[:-1]) + " or " + remedies[-1]


def check_sample_sizes(opt: Options, dataset: Any, with_discriminator: bool = True) -> None:
    """Refuse, in one line naming the smallest file, a dataset whose smallest sample G or D
    cannot train on (G only without ``with_discriminator``: test.py). A dataset that does not
    know its sizes before decoding (a version-1 shard index) is not checked."""
    sizes = dataset.sample_sizes() if hasattr(dataset, "sample_sizes") else None
    if not sizes:
        return
    index = _smallest_sample(sizes)
    height, width = sizes[index]
    g_spec = generator_spec(opt)
    step = g_spec.size_multiple
    # Every map grows with the input, so a size that works proves every larger one: a capped
    # size first (cheap on large images), the sample's own only when that fails.
    capped = (max(step, min(height, CHEAP_SIDE) // step * step), max(step, min(width, CHEAP_SIDE) // step * step))
    nets = [("--netG", g_spec)]
    if with_discriminator:
        nets.append(("--netD", DISCRIMINATORS.from_options(vars(opt))))
    for option, spec in nets:
        if runs_at(spec, *capped) or runs_at(spec, height, width):
            continue
        needed = smallest_square(spec, step * (min(height, width) // step + 1), step)
        if needed is None:   # no size works: the failure is not about size, and not this check's to report
            log.debug("%s %s: the size probe is inconclusive; not checked", option, spec.name)
            continue
        stored = _stored_size(dataset, index)
        shown = f"{stored[1]}x{stored[0]} px" + (f" ({width}x{height} after --preprocess {opt.preprocess})"
                                                 if stored != (height, width) else "")
        raise OptionError(f"{dataset.paths[index]}: {shown} is too small for {_described(option, spec)}, which "
                          f"needs at least {needed}x{needed} px after preprocessing (the smallest sample here); use "
                          f"{_remedies(spec, needed)}")


def _stored_size(dataset: Any, index: int) -> tuple[int, int]:
    """One image's stored (height, width) (an aligned file holds two side by side)."""
    stored = getattr(getattr(dataset, "store", None), "sizes", None)
    if not stored:
        return dataset.sample_sizes()[index]
    return dataset.stored_image_size(*stored[index])
