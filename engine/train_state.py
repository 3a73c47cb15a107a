"""Training bookkeeping: counters, and saving/resuming whole training states."""
from __future__ import annotations

import argparse
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Mapping

import torch

from engine.checkpoint import (FULL_FORMAT, GENERATOR_FORMAT, CheckpointError, architecture_mismatch, full_path,
                             generator_path, load_file, save_atomic)
from engine.resume import resume_hint
from engine.rng import capture_rng_state, restore_rng_state, seed_everything
from util.errors import UserError


class DivergedError(UserError, RuntimeError):
    """A loss became NaN or infinite: nothing is saved past this point."""


@dataclass
class TrainState:
    epoch: int = 1           # the epoch being trained (1-based)
    epoch_samples: int = 0   # samples this process has taken from the current epoch
    step: int = 0            # optimization steps done
    samples: int = 0         # samples seen by all processes together

    def advance(self, local_batch: int, world_size: int) -> None:
        self.step += 1
        self.epoch_samples += local_batch
        self.samples += local_batch * world_size

    def next_epoch(self) -> None:
        self.epoch += 1
        self.epoch_samples = 0


def crossed(before: int, after: int, every: int) -> bool:
    """Did a counter going from ``before`` to ``after`` pass a multiple of ``every``?"""
    return after // every > before // every


def options_dict(opt: argparse.Namespace) -> dict:
    """Options as plain values (what torch.load(weights_only=True) accepts)."""
    plain = (str, int, float, bool, type(None))
    out = {}
    for key, value in vars(opt).items():
        if key.startswith("_"):
            continue
        if isinstance(value, (list, tuple)):
            value = list(value)
        elif not isinstance(value, plain):
            value = str(value)
        out[key] = value
    return out


def check_finite(losses: Mapping[str, torch.Tensor], step: int) -> None:
    for name, value in losses.items():
        if not math.isfinite(float(value)):
            raise DivergedError(f"training diverged at step {step}: {name} is {float(value)}; "
                                "the checkpoints saved before this point are kept")


def check_finite_weights(nets: Mapping[str, torch.nn.Module], step: int) -> None:
    """A step whose gradients overflowed leaves NaN weights behind a loss that was still finite:
    the weights themselves are checked before they may replace a checkpoint."""
    for name, net in nets.items():
        for key, param in net.named_parameters():
            if not bool(torch.isfinite(param).all()):
                raise DivergedError(f"training diverged at step {step}: {name}.{key} holds nan or inf values; "
                                    "the checkpoints saved before this point are kept")


def save_training(exp_dir: Path, label: str, model, state: TrainState, opt: argparse.Namespace,
                  rng_per_rank: list[dict] | None = None) -> None:
    """Write ``<label>.pt`` (everything) and ``<label>_net_G.pt`` (generator + options).

    ``rng_per_rank`` holds every process's RNG streams (dropout differs per rank), so that a
    resume with the same number of processes continues each rank's streams exactly."""
    options = options_dict(opt)
    rng_per_rank = rng_per_rank or [capture_rng_state()]
    payload = {"format": FULL_FORMAT, "state": asdict(state), "world_size": len(rng_per_rank),
               "rng": rng_per_rank[0], "rng_per_rank": rng_per_rank, "options": options, **model.state_dict()}
    for path, content in ((full_path(exp_dir, label), payload),
                          (generator_path(exp_dir, label),
                           {"format": GENERATOR_FORMAT, "net_G": payload["nets"]["G"], "options": options})):
        try:
            save_atomic(content, path)
        except OSError as err:  # a full disk, a quota, a folder gone read-only
            raise CheckpointError(f"{path}: could not be written ({err.strerror or err}); the file it would "
                                  "have replaced is intact and no partial file is left") from None


def load_label(opt: argparse.Namespace) -> str:
    return f"iter_{opt.load_iter}" if opt.load_iter > 0 else str(opt.epoch)


def resume_training(exp_dir: Path, label: str, model, opt: argparse.Namespace, rank: int = 0,
                    world_size: int = 1) -> TrainState:
    """Load a full checkpoint into ``model`` and return the counters to go on from.

    With the number of processes it was saved with, each rank gets its own RNG streams back
    and resumes at its exact sample. With another number, rank r restarts its streams from
    (seed, rank, step) and the position inside the epoch is rebased on the samples already
    taken by all processes (the rest of that epoch is then sharded differently)."""
    path = full_path(exp_dir, label)
    if not path.is_file() and reference_files(exp_dir, label):
        return resume_from_reference(exp_dir, label, model, opt, rank)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint to resume from (--continue_train --epoch {label}); "
                              f"saved: {', '.join(sorted(p.stem for p in exp_dir.glob('*.pt') if '_net_' not in p.name)) or 'none'}")
    try:
        ckpt = load_file(path, map_location=model.device)
    except CheckpointError as err:
        # Name the way out: the newest checkpoint that does load (a kill cannot leave a bad
        # file, but a disk or a copy can).
        raise CheckpointError(f"{err}; {resume_hint(exp_dir, skip=path)}") from None
    if ckpt.get("format") != FULL_FORMAT:
        raise CheckpointError(f"{path}: not a full training checkpoint of this program")
    problem = architecture_mismatch(ckpt["options"], vars(opt), include_D=True)
    if problem:
        raise CheckpointError(f"{path}: {problem}")
    try:
        model.load_state_dict(ckpt)
    except (RuntimeError, KeyError, ValueError) as err:
        raise CheckpointError(f"{path}: does not fit this model ({str(err).splitlines()[0]})") from None
    state = TrainState(**ckpt["state"])
    saved_world = ckpt.get("world_size", 1)
    per_rank = ckpt.get("rng_per_rank", [ckpt["rng"]])
    if saved_world == world_size and len(per_rank) == world_size:
        restore_rng_state(per_rank[rank])
    else:
        seed_everything(opt.seed + rank + world_size * (state.step + 1))
        state.epoch_samples = state.epoch_samples * saved_world // world_size
    return state


def reference_files(exp_dir: Path, label: str) -> tuple[Path, Path] | None:
    """``<label>_net_G.pth`` and ``<label>_net_D.pth`` of the reference implementation, if both exist."""
    g, d = exp_dir / f"{label}_net_G.pth", exp_dir / f"{label}_net_D.pth"
    return (g, d) if g.is_file() and d.is_file() else None


def resume_from_reference(exp_dir: Path, label: str, model, opt: argparse.Namespace, rank: int = 0) -> TrainState:
    """Go on training from the reference implementation's G and D files. They hold weights only,
    as the reference's own --continue_train uses them: the optimizers start fresh and the epoch
    count comes from --epoch_count."""
    for path, name in zip(reference_files(exp_dir, label), ("G", "D")):
        state = load_file(path, map_location=model.device)
        try:
            # The model converts the reference's layout (models/reference_compat.py): the
            # engine only reads files and hands plain state dicts up.
            model.load_reference_net(name, state)
        except (CheckpointError, RuntimeError) as err:
            raise CheckpointError(f"{path}: {str(err).splitlines()[0]}") from None
    seed_everything(opt.seed + rank)
    return TrainState(epoch=opt.epoch_count)


def existing_checkpoints(exp_dir: Path) -> list[Path]:
    return sorted(exp_dir.glob("*.pt"))
