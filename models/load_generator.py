"""Find and load a trained generator for inference (test.py, translate.py).

Looks in ``<checkpoints_dir>/<name>/`` for, in order: the moving average of G kept by a run
with ``--ema_decay`` (in the full checkpoint ``<label>.pt``; skipped with ``--no_ema``), our
generator-only file ``<label>_net_G.pt``, our full checkpoint ``<label>.pt``, and a
reference-implementation file ``<label>_net_G.pth`` (a bare state_dict without options).
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from engine.checkpoint import (FULL_FORMAT, GENERATOR_ARCHITECTURE, GENERATOR_FORMAT, CheckpointError,
                               architecture_mismatch, full_path, generator_path, load_file)
from models.reference_compat import convert_reference_generator

# Options a checkpoint decides unless the user typed them: what the generator is (the one
# architecture list, engine/checkpoint.py) and how it was trained to run.
FROM_CHECKPOINT = (*GENERATOR_ARCHITECTURE, "no_dropout", "direction")


@dataclass
class SavedGenerator:
    path: Path
    state_dict: dict[str, torch.Tensor]
    options: dict[str, Any] | None     # None: a reference checkpoint, which stores no options
    ema: bool = False                  # the weights are the moving average (--ema_decay), not G's own

    @property
    def is_reference(self) -> bool:
        return self.options is None


def reference_path(exp_dir: Path, label: str) -> Path:
    return exp_dir / f"{label}_net_G.pth"


def find_generator(exp_dir: Path, label: str, use_ema: bool = True) -> SavedGenerator:
    """The generator saved under ``label``; with ``use_ema`` (the default: what inference runs
    unless --no_ema) the moving average of its weights when the run kept one."""
    ours_g, ours_full, ref = generator_path(exp_dir, label), full_path(exp_dir, label), reference_path(exp_dir, label)
    if ours_g.is_file():
        ckpt = load_file(ours_g)
        if ckpt.get("format") == GENERATOR_FORMAT:
            if use_ema and ckpt["options"].get("ema_decay", 0) > 0 and ours_full.is_file():
                averaged = _averaged_generator(ours_full)
                if averaged is not None:
                    return averaged
            return SavedGenerator(ours_g, ckpt["net_G"], ckpt["options"])
    if ours_full.is_file():
        ckpt = load_file(ours_full)
        if ckpt.get("format") == FULL_FORMAT:
            if use_ema and "ema" in ckpt:
                return SavedGenerator(ours_full, ckpt["ema"]["G"]["net"], ckpt["options"], ema=True)
            return SavedGenerator(ours_full, ckpt["nets"]["G"], ckpt["options"])
    if ref.is_file():
        state = load_file(ref)
        if not all(torch.is_tensor(v) for v in state.values()):
            raise CheckpointError(f"{ref}: not a state_dict of tensors")
        return SavedGenerator(ref, dict(state), None)
    raise CheckpointError(f"no generator checkpoint '{label}' in {exp_dir} (looked for {ours_g.name}, "
                          f"{ours_full.name}, {ref.name})")


def _averaged_generator(path: Path) -> SavedGenerator | None:
    """The moving average of G from a full checkpoint: it lives there only (the state_dict of
    models/pix2pix_model.py), next to the trained G."""
    ckpt = load_file(path)
    if ckpt.get("format") != FULL_FORMAT or "ema" not in ckpt:
        return None
    return SavedGenerator(path, ckpt["ema"]["G"]["net"], ckpt["options"], ema=True)


def options_for(opt: argparse.Namespace, saved: SavedGenerator) -> dict[str, Any]:
    """Option values to use with this checkpoint: the checkpoint's, except where the user
    typed a value; a typed value that contradicts the checkpoint's architecture is an error."""
    if saved.options is None:
        return {}
    typed = set(getattr(opt, "explicit", ()))
    problem = architecture_mismatch(saved.options, {k: getattr(opt, k) for k in typed if hasattr(opt, k)},
                                    include_D=False)
    if problem:
        raise CheckpointError(f"{saved.path}: {problem}")
    return {key: saved.options[key] for key in FROM_CHECKPOINT if key in saved.options and key not in typed}


def load_into(net: nn.Module, saved: SavedGenerator, opt: argparse.Namespace) -> None:
    state = saved.state_dict
    if saved.is_reference:
        try:
            state = convert_reference_generator(state, net, opt)
        except CheckpointError as err:
            raise CheckpointError(f"{saved.path}: {err}") from None
    try:
        net.load_state_dict(state)
    except RuntimeError as err:
        raise CheckpointError(f"{saved.path}: does not fit --netG {opt.netG} --ngf {opt.ngf} --norm {opt.norm} "
                              f"({str(err).splitlines()[0]})") from None
