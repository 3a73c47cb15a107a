"""A saved generator for inference (test.py, translate.py, serve.py, export.py): which
architecture to build, and its weights loaded into it.

The files are found and read by engine/checkpoint/; this module hands down what the engine
may not know (how options of an older file become a spec) and decides the architecture:
the checkpoint's spec, where a typed flag may not contradict it. A reference .pth file keeps
no spec: its architecture is read from its weights (models/reference_compat.py) into one, and
the typed flags are checked against that the same way.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from torch import nn

from data.transforms import PREPROCESS_MODES
from engine.checkpoint import CheckpointError, SavedGenerator
from engine.checkpoint import find_generator as find_in_folder
from models.networks import GENERATORS, architecture_from_options, generator_spec
from models.networks.spec import GeneratorSpec, as_options, typed_mismatch
from models.reference_compat import (convert_reference_generator, read_reference_generator,
                                     reference_generator_options)
from util.errors import first_line

__all__ = ["SavedGenerator", "find_generator", "spec_for", "options_for", "load_into"]

log = logging.getLogger(__name__)


def find_generator(exp_dir: Path, label: str, use_ema: bool = True, model_suffix: str = "") -> SavedGenerator:
    """``model_suffix`` (--model_suffix): the reference file ``<label>_net_G<suffix>.pth``."""
    return find_in_folder(exp_dir, label, architecture_from_options, use_ema, model_suffix)


def _typed(opt: argparse.Namespace) -> set[str]:
    return set(getattr(opt, "explicit", ()))


def spec_for(opt: argparse.Namespace, saved: SavedGenerator) -> GeneratorSpec:
    """The generator to build for ``saved``: its own spec (a reference file's read from its
    weights); a typed value that contradicts the weights' layout is an error naming the file.
    A typed --no_dropout does not rebuild the network (a ResNet block without its Dropout module
    no longer fits the file's keys): ``options_for`` turns it into dropout off at run time."""
    typed, values = _typed(opt), vars(opt)
    spec = GENERATORS.from_dict(saved.spec) if saved.spec is not None else _reference_spec(saved, values)
    problem = typed_mismatch(spec, values, typed, "netG")
    if problem:
        raise CheckpointError(f"{saved.path}: {problem}")
    assert isinstance(spec, GeneratorSpec)
    return spec


def _reference_spec(saved: SavedGenerator, values: dict[str, Any]) -> GeneratorSpec:
    try:
        found = reference_generator_options(read_reference_generator(saved.state_dict), values)
    except CheckpointError as err:
        raise CheckpointError(f"{saved.path}: {err}") from None
    return generator_spec({**values, **found})


def options_for(opt: argparse.Namespace, saved: SavedGenerator, spec: GeneratorSpec | None = None) -> dict[str, Any]:
    """Option values to use with this checkpoint: those describing its architecture (after
    ``spec_for``'s checks; a typed --no_dropout as ``dropout: off``), and the direction it was
    trained in unless typed; likewise ``--preprocess pad``, where the run trained on padded
    images at their own size, which inference must feed it the same way (any other
    preprocessing stays the command's). ``spec``: ``spec_for``'s answer when the caller has it
    (a reference file's is found by building a tiny network of every --netG)."""
    spec = spec or spec_for(opt, saved)
    values = as_options(spec, "netG")
    if spec.dropout and "no_dropout" in _typed(opt) and hasattr(opt, "dropout") and opt.dropout is None:
        values["dropout"] = "off"
    if saved.options and "direction" in saved.options and "direction" not in _typed(opt):
        values["direction"] = saved.options["direction"]
    trained = (saved.options or {}).get("preprocess")
    if trained in PREPROCESS_MODES and PREPROCESS_MODES.get(trained).pads and "preprocess" not in _typed(opt):
        values["preprocess"] = trained
    return values


def load_into(net: nn.Module, saved: SavedGenerator) -> None:
    """``saved``'s weights into ``net`` (built from ``spec_for``), converting a reference file's."""
    state = saved.state_dict
    if saved.is_reference:
        try:
            state = convert_reference_generator(state, net)
        except CheckpointError as err:
            raise CheckpointError(f"{saved.path}: {err}") from None
        log.info("%s", describe_reference(saved, net.spec))
    try:
        net.load_state_dict(state)
    except RuntimeError as err:
        s = net.spec
        raise CheckpointError(f"{saved.path}: does not fit --netG {s.name} --ngf {s.ngf} --norm {s.norm} "
                              f"({first_line(err)})") from None


def describe_reference(saved: SavedGenerator, spec: GeneratorSpec) -> str:
    """What was read from a reference file, e.g. "latest_net_G.pth (reference file): --netG
    resnet_9blocks --ngf 64 --norm instance, 3 -> 3 channels, dropout off, read from its weights"."""
    dropout = "on" if spec.dropout else "off"
    if read_reference_generator(saved.state_dict).dropout is None:
        dropout += " (the options': a U-Net's weights do not record it)"
    return (f"{saved.path.name} (reference file): --netG {spec.name} --ngf {spec.ngf} --norm {spec.norm}, "
            f"{spec.input_nc} -> {spec.output_nc} channels, dropout {dropout}, read from its weights")
