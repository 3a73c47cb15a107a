"""Load a trained generator for translate.py, serve.py and export.py: one path, so that the
three commands run the very same network with the very same test-time behaviour.

The checkpoint decides the architecture (and the model, hence how images are encoded)
unless the user typed it; a reference-implementation file's architecture is read from its
weights (models/reference_compat.py).
"""
from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from engine.checkpoint import CheckpointError, load_label
from engine.distributed import single_process_runtime
from inference.translator import (CODECS, Translator, check_bn_eval_used, check_codec_channels, fit_after,
                                  set_inference_behaviour)
from models.load_generator import find_generator, load_into, options_for, spec_for, translate_io_of
from models.networks.min_size import SEARCH_LIMIT, smallest_square
from models.networks.spec import GeneratorSpec

# Suffixes of the files a user may mistake for a run's folder (checkpoints, exported graphs).
MODEL_FILE_SUFFIXES = (".pt", ".pth", ".onnx")

log = logging.getLogger(__name__)


def smallest_side(spec: GeneratorSpec) -> int:
    """The smallest side, a multiple of the network's, that ``spec``'s generator takes (a ResNet
    needs 8 px: two halvings, then reflection padding and batch statistics of more than 1 px),
    asked of the network itself (models/networks/min_size.py, training-mode probe: what the
    paper's mode needs, and at least what eval mode needs). The multiple when the probe finds
    none (the failure is then not about size)."""
    m = spec.size_multiple
    return smallest_square(spec, m, m, max(m, SEARCH_LIMIT)) or m


@dataclass
class LoadedGenerator:
    net: nn.Module
    opt: argparse.Namespace   # the command's options with the checkpoint's architecture applied
    spec: GeneratorSpec       # what was built
    path: Path
    device: torch.device
    behaviour: str            # e.g. "batch norm: eval, bn_eval=running; dropout off"

    @property
    def translate_io(self) -> str:
        return translate_io_of(self.opt.model)

    @property
    def fit(self) -> str:
        """The --fit that feeds G as its training did (reflect after --preprocess pad)."""
        return fit_after(getattr(self.opt, "preprocess", None))

    @property
    def size_multiple(self) -> int:
        return self.spec.size_multiple

    @property
    def min_side(self) -> int:
        return smallest_side(self.spec)

    def describe(self) -> str:
        s = self.spec
        return (f"{self.path}: --netG {s.name} --ngf {s.ngf} --norm {s.norm}, {s.input_nc} -> {s.output_nc} "
                f"channels, {self.behaviour}, on {self.device}")


def run_folder(opt: argparse.Namespace) -> Path:
    """``--checkpoints_dir/--name``; refuses a --name that is a checkpoint file rather than its folder."""
    exp_dir = Path(opt.checkpoints_dir) / opt.name
    if exp_dir.is_file() or (exp_dir.suffix in MODEL_FILE_SUFFIXES and not exp_dir.is_dir()):
        raise CheckpointError(f"--name {opt.name}: --name is the run's folder name, found under --checkpoints_dir, "
                              f"not a file; for {exp_dir.name} give --checkpoints_dir {exp_dir.parent.parent} "
                              f"--name {exp_dir.parent.name}")
    return exp_dir


def load_generator(opt: argparse.Namespace) -> LoadedGenerator:
    """Find ``opt.name``'s checkpoint, build G from it and set its test-time behaviour
    (``opt.eval``, ``opt.bn_eval``, ``opt.dropout``). Raises CheckpointError naming the file,
    and OptionError for options that cannot work with it, before any network is built."""
    check_bn_eval_used(opt)
    saved = find_generator(run_folder(opt), load_label(opt), use_ema=not getattr(opt, "no_ema", False),
                           model_suffix=opt.model_suffix)
    spec = spec_for(opt, saved)
    from_ckpt = options_for(opt, saved, spec)
    values = opt.as_dict() if hasattr(opt, "as_dict") else vars(opt)
    resolved = argparse.Namespace(**{**values, **from_ckpt})

    device = single_process_runtime(resolved.gpu_ids).device
    trained_as = (saved.options or {}).get("model")
    typed = "model" in opt.explicit and trained_as not in (None, resolved.model)
    check_codec_channels(translate_io_of(resolved.model), spec.input_nc, spec.output_nc, str(saved.path),
                         f"--model {resolved.model}",
                         f"; it was trained as --model {trained_as}: leave --model out" if typed else "")
    net = spec.build()
    try:
        load_into(net, saved)
    except CheckpointError as err:
        message = str(err)
        raise CheckpointError(message if str(saved.path) in message else f"{saved.path}: {message}") from None
    net.to(device)
    behaviour = set_inference_behaviour(net, resolved.eval, resolved.bn_eval, resolved.dropout)
    return LoadedGenerator(net, resolved, spec, saved.path, device, behaviour)


def translator_for(loaded: LoadedGenerator, fit: str | None = None, load_size: int | None = None) -> Translator:
    """``fit`` None: the checkpoint's own (:attr:`LoadedGenerator.fit`)."""
    s = loaded.spec
    return Translator(loaded.net, loaded.device, CODECS.get(loaded.translate_io), s.input_nc, s.output_nc,
                      s.size_multiple, fit=fit or loaded.fit, load_size=load_size, min_side=loaded.min_side)
