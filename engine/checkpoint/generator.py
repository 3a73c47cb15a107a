"""Finding a trained generator for inference (test.py, translate.py, serve.py, export.py).

Looks in the experiment folder for, in order: the moving average of G kept by a run with
``--ema_decay`` (in the full checkpoint ``<label>.pt``; skipped with ``use_ema`` False), our
generator file ``<label>_net_G.pt``, our full checkpoint ``<label>.pt``, and a
reference-implementation file ``<label>_net_G.pth`` (a bare state_dict: no spec, no options).
With a --model_suffix only the reference file ``<label>_net_G<suffix>.pth`` is looked for: our
files never carry one.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from engine.checkpoint.files import CheckpointError, full_path, generator_path, load_file, reference_paths
from engine.checkpoint.format import Execution, SpecsOfOptions, kind_of, upgrade


@dataclass
class SavedGenerator:
    path: Path
    state_dict: dict[str, torch.Tensor]
    spec: dict[str, Any] | None        # G's spec; None: a reference checkpoint, which stores none
    options: dict[str, Any] | None     # the options of the run that trained it (None: reference)
    ema: bool = False                  # the weights are the moving average (--ema_decay), not G's own
    execution: Execution | None = None  # precision and OpenMP waiting it was trained with (None: reference)

    @property
    def is_reference(self) -> bool:
        return self.spec is None


def _from_full(path: Path, ckpt: dict, use_ema: bool) -> SavedGenerator:
    # The moving average lives in the full checkpoint only (models/pix2pix_model.py's
    # state_dict: ema -> G -> net), next to the trained G.
    if use_ema and "ema" in ckpt:
        return SavedGenerator(path, ckpt["ema"]["G"]["net"], ckpt["specs"]["G"], ckpt["options"], ema=True,
                              execution=Execution.from_dict(ckpt["execution"]))
    return SavedGenerator(path, ckpt["nets"]["G"], ckpt["specs"]["G"], ckpt["options"],
                          execution=Execution.from_dict(ckpt["execution"]))


def _reference(path: Path) -> SavedGenerator:
    state = load_file(path)
    if not all(torch.is_tensor(v) for v in state.values()):
        raise CheckpointError(f"{path}: not a state_dict of tensors")
    return SavedGenerator(path, dict(state), None, None)


def _read(path: Path, kind: str, specs_of_options: SpecsOfOptions) -> dict | None:
    ckpt = load_file(path)
    return upgrade(ckpt, path, specs_of_options) if kind_of(ckpt) == kind else None


def find_generator(exp_dir: Path, label: str, specs_of_options: SpecsOfOptions,
                   use_ema: bool = True, model_suffix: str = "") -> SavedGenerator:
    """The generator saved under ``label``; with ``use_ema`` (what inference runs unless
    --no_ema) the moving average of its weights when the run kept one. ``specs_of_options``
    (handed down by the model layer) gives files of version 1 their specs."""
    ours_g, ours_full = generator_path(exp_dir, label), full_path(exp_dir, label)
    ref = reference_paths(exp_dir, label, model_suffix)[0]
    if model_suffix:
        if not ref.is_file():
            raise CheckpointError(f"no reference generator '{ref.name}' in {exp_dir} (--model_suffix {model_suffix})")
        return _reference(ref)
    if ours_g.is_file():
        ckpt = _read(ours_g, "G", specs_of_options)
        if ckpt is not None:
            if use_ema and ckpt["options"].get("ema_decay", 0) > 0 and ours_full.is_file():
                full = _read(ours_full, "full", specs_of_options)
                if full is not None and "ema" in full:
                    return _from_full(ours_full, full, use_ema=True)
            return SavedGenerator(ours_g, ckpt["net_G"], ckpt["spec"], ckpt["options"],
                                  execution=Execution.from_dict(ckpt["execution"]))
    if ours_full.is_file():
        full = _read(ours_full, "full", specs_of_options)
        if full is not None:
            return _from_full(ours_full, full, use_ema)
    if ref.is_file():
        return _reference(ref)
    raise CheckpointError(f"no generator checkpoint '{label}' in {exp_dir} (looked for {ours_g.name}, "
                          f"{ours_full.name}, {ref.name}){_why_no_best(exp_dir) if label == BEST else ''}")


BEST = "best"   # the best checkpoint's label (engine/best.py's BEST_LABEL is this)


def _why_no_best(exp_dir: Path) -> str:
    """Why a run has no 'best', from the options its 'latest' records where it can tell: only a
    run that validates with --best_metric keeps one. Ends with the checkpoints that are there."""
    options: dict = {}
    for path in (generator_path(exp_dir, "latest"), full_path(exp_dir, "latest")):
        try:
            options = load_file(path).get("options") or {} if path.is_file() else {}
        except CheckpointError:
            continue
        if options:
            break
    if options and not (options.get("val_freq") or options.get("val_epoch_freq")):
        why = "this run did not validate (no --val_freq or --val_epoch_freq), so it kept no best checkpoint"
    elif options and options.get("best_metric") in (None, "none"):
        given = "with --best_metric none" if options.get("best_metric") else "without --best_metric"
        why = f"this run validated {given}, so it kept no best checkpoint (test --epoch latest)"
    else:
        why = "'best' is written only by a run that validates (--val_freq or --val_epoch_freq) with --best_metric"
    labels = sorted({p.name.removesuffix(".pt").removesuffix("_net_G") for p in exp_dir.glob("*.pt")})
    return f"; {why}" + (f"; checkpoints here: {', '.join(labels)}" if labels else "")
