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
from typing import Any, Callable

from torch import nn

from data.transforms import PREPROCESS_MODES
from engine.checkpoint import CheckpointError, SavedGenerator
from engine.checkpoint import find_generator as find_in_folder
from models import MODELS
from models.networks import GENERATORS, architecture_from_options, generator_spec
from models.networks.spec import GeneratorSpec, as_options, typed_mismatch
from models.reference_compat import (convert_reference_generator, read_reference_generator,
                                     reference_generator_options)
from util.errors import first_line

__all__ = ["SavedGenerator", "find_generator", "spec_for", "options_for", "trained_option", "load_into"]

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


def _pads(trained: Any) -> bool:
    return trained in PREPROCESS_MODES and PREPROCESS_MODES.get(trained).pads


# Options the run trained with that inference takes from its checkpoint unless typed, each
# where its test says: the direction G translates in; the model, whose data mode and channels
# decide how images become G's input (test.py parses again with it); and --preprocess pad,
# where G learnt on reflect-padded images at their own size (any other preprocessing stays the
# command's: it only resized or cropped training images).
FROM_THE_RUN: dict[str, Callable[[Any], bool]] = {
    "direction": lambda trained: True,
    "model": lambda trained: trained in MODELS,
    "preprocess": _pads,
}


def trained_option(opt: argparse.Namespace, saved: SavedGenerator, name: str) -> Any | None:
    """The value of ``name`` (a key of FROM_THE_RUN) inference takes from ``saved``'s run: None
    where it was typed, the file records none, or its test says the command's value stands."""
    trained = (saved.options or {}).get(name)
    if name in _typed(opt) or trained is None or not FROM_THE_RUN[name](trained):
        return None
    return trained


def translate_io_of(model: str) -> str:
    """How ``model``'s images become inputs and outputs become images (a key of
    inference/translator.py's CODECS)."""
    return MODELS.entry(model).meta.get("translate_io", "rgb")


def check_typed_model(opt: argparse.Namespace, saved: SavedGenerator) -> None:
    """Refuse a typed --model that reads and writes images differently from the one the
    checkpoint was trained as (pix2pix on a colorization checkpoint would feed L as a gray
    picture and write the raw ab channels): the one line of test.py, translate.py, serve.py
    and export.py."""
    trained = (saved.options or {}).get("model")
    typed = getattr(opt, "model", None)
    if "model" not in _typed(opt) or trained not in MODELS or typed == trained:
        return
    if translate_io_of(trained) != translate_io_of(typed):
        raise CheckpointError(f"{saved.path}: it was trained as --model {trained}, so --model {typed} cannot run it "
                              f"(its images are encoded differently): leave --model out")


def options_for(opt: argparse.Namespace, saved: SavedGenerator, spec: GeneratorSpec | None = None) -> dict[str, Any]:
    """Option values to use with this checkpoint: those describing its architecture (after
    ``spec_for``'s checks; a typed --no_dropout as ``dropout: off``), and those FROM_THE_RUN
    says inference takes from the run. ``spec``: ``spec_for``'s answer when the caller has it
    (a reference file's is found by building a tiny network of every --netG)."""
    spec = spec or spec_for(opt, saved)
    check_typed_model(opt, saved)
    values = as_options(spec, "netG")
    if spec.dropout and "no_dropout" in _typed(opt) and hasattr(opt, "dropout") and opt.dropout is None:
        values["dropout"] = "off"
    for name in FROM_THE_RUN:
        trained = trained_option(opt, saved, name)
        if trained is not None:
            values[name] = trained
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
