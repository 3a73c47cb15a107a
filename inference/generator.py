"""Load a trained generator for translate.py, serve.py and export.py: one path, so that the
three commands run the very same network with the very same test-time behaviour.

The checkpoint decides the architecture (and the model, hence how images are encoded)
unless the user typed it; reference-implementation files need the typed flags.
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
from inference.translator import CODECS, Translator, fit_after, set_inference_behaviour
from models import MODELS
from models.load_generator import find_generator, load_into, options_for, spec_for
from models.networks.spec import GeneratorSpec

log = logging.getLogger(__name__)


@dataclass
class LoadedGenerator:
    net: nn.Module
    opt: argparse.Namespace   # the command's options with the checkpoint's architecture applied
    spec: GeneratorSpec       # what was built
    path: Path
    device: torch.device
    behaviour: str            # e.g. "norm layers: eval, bn_eval=running; dropout off"

    @property
    def translate_io(self) -> str:
        """How images become inputs and outputs become images (a key of CODECS)."""
        return MODELS.entry(self.opt.model).meta.get("translate_io", "rgb")

    @property
    def fit(self) -> str:
        """The --fit that feeds G as its training did (reflect after --preprocess pad)."""
        return fit_after(getattr(self.opt, "preprocess", None))

    @property
    def size_multiple(self) -> int:
        return self.spec.size_multiple

    def describe(self) -> str:
        s = self.spec
        return (f"{self.path}: --netG {s.name} --ngf {s.ngf} --norm {s.norm}, {s.input_nc} -> {s.output_nc} "
                f"channels, {self.behaviour}, on {self.device}")


def load_generator(opt: argparse.Namespace) -> LoadedGenerator:
    """Find ``opt.name``'s checkpoint, build G from it and set its test-time behaviour
    (``opt.eval``, ``opt.bn_eval``, ``opt.dropout``). Raises CheckpointError naming the file."""
    saved = find_generator(Path(opt.checkpoints_dir) / opt.name, load_label(opt),
                           use_ema=not getattr(opt, "no_ema", False))
    from_ckpt = options_for(opt, saved)
    if saved.options and "model" in saved.options and "model" not in opt.explicit:
        from_ckpt["model"] = saved.options["model"]
    values = opt.as_dict() if hasattr(opt, "as_dict") else vars(opt)
    resolved = argparse.Namespace(**{**values, **from_ckpt})

    device = single_process_runtime(resolved.gpu_ids).device
    spec = spec_for(opt, saved)
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
                      s.size_multiple, fit=fit or loaded.fit, load_size=load_size)
