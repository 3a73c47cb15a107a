"""A saved generator for inference (test.py, translate.py, serve.py, export.py): which
architecture to build, and its weights loaded into it.

The files are found and read by engine/checkpoint/; this module hands down what the engine
may not know (how options of an older file become a spec) and decides the architecture:
the checkpoint's spec, where a typed flag may not contradict it; for a reference .pth file
(no spec inside) the typed flags.
"""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from torch import nn

from data.transforms import PREPROCESS_MODES
from engine.checkpoint import CheckpointError, SavedGenerator
from engine.checkpoint import find_generator as find_in_folder
from models.networks import GENERATORS, architecture_from_options, generator_spec
from models.networks.spec import GeneratorSpec, as_options, flag_name, flag_of, typed_mismatch
from models.reference_compat import convert_reference_generator
from util.errors import first_line

__all__ = ["SavedGenerator", "find_generator", "spec_for", "options_for", "load_into"]


def find_generator(exp_dir: Path, label: str, use_ema: bool = True) -> SavedGenerator:
    return find_in_folder(exp_dir, label, architecture_from_options, use_ema)


def _typed(opt: argparse.Namespace) -> set[str]:
    return set(getattr(opt, "explicit", ()))


def spec_for(opt: argparse.Namespace, saved: SavedGenerator) -> GeneratorSpec:
    """The generator to build for ``saved``: its own spec, with the typed values of fields that
    do not change the weights (--no_dropout); a typed value that contradicts the weights' layout
    is an error naming the file. A reference file has no spec: the flags describe it."""
    if saved.spec is None:
        return generator_spec(opt)
    spec = GENERATORS.from_dict(saved.spec)
    typed, values = _typed(opt), vars(opt)
    problem = typed_mismatch(spec, values, typed, "netG")
    if problem:
        raise CheckpointError(f"{saved.path}: {problem}")
    overrides = {}
    for f in spec.arch_fields():
        flag = flag_of(f)
        if flag is not None and not flag.shape and flag_name(f) in typed:
            overrides[f.name] = (not values[flag_name(f)]) if flag.invert else values[flag_name(f)]
    assert isinstance(spec, GeneratorSpec)
    return dataclasses.replace(spec, **overrides)


def options_for(opt: argparse.Namespace, saved: SavedGenerator) -> dict[str, Any]:
    """Option values to use with this checkpoint: those describing its architecture (after
    ``spec_for``'s checks), and the direction it was trained in unless typed; likewise
    ``--preprocess pad``, where the run trained on padded images at their own size, which
    inference must feed it the same way (any other preprocessing stays the command's)."""
    if saved.spec is None:
        return {}
    values = as_options(spec_for(opt, saved), "netG")
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
    try:
        net.load_state_dict(state)
    except RuntimeError as err:
        s = net.spec
        raise CheckpointError(f"{saved.path}: does not fit --netG {s.name} --ngf {s.ngf} --norm {s.norm} "
                              f"({first_line(err)})") from None
