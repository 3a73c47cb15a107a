"""Resuming: which checkpoint a run resumes from, and loading it into the model.

Which one: ``--continue_train`` names one; ``--continue_train auto``
takes the requested one when the experiment folder holds it, falls back to the newest loadable
one when that file is damaged, and starts fresh when the folder holds no checkpoint at all. So a
scheduler, or ``torchrun --max_restarts``, can rerun the very same command after any failure.
"""
from __future__ import annotations

import logging
from pathlib import Path

import argparse
from typing import Callable

from engine.checkpoint.files import CheckpointError, full_path, label_option, load_file, reference_paths
from engine.checkpoint.format import Execution, full_checkpoint_problem, is_full_checkpoint, kind_of, upgrade
from engine.rng import restore_rng_state, seed_everything
from engine.train_state import TrainState
from util.errors import first_line

log = logging.getLogger(__name__)

AUTO = "auto"


def full_checkpoints(exp_dir: Path) -> list[Path]:
    """``<label>.pt`` files (not the generator-only ``<label>_net_G.pt``), newest first."""
    found = [p for p in exp_dir.glob("*.pt") if not p.stem.endswith("_net_G")]
    return sorted(found, key=lambda p: p.stat().st_mtime_ns, reverse=True)


def loads(path: Path) -> bool:
    return is_full_checkpoint(path)


def newest_loadable(exp_dir: Path, skip: Path | None = None) -> Path | None:
    """The most recently written full checkpoint that loads, other than ``skip``."""
    for path in full_checkpoints(exp_dir):
        if path != skip and loads(path):
            return path
    return None


def resume_hint(exp_dir: Path, skip: Path) -> str:
    fallback = newest_loadable(exp_dir, skip)
    if fallback is None:
        return "no other loadable checkpoint in this folder; --overwrite starts again"
    return f"the newest loadable checkpoint is {fallback.name}: resume with --continue_train {label_option(fallback.stem)}"


def auto_resume_label(exp_dir: Path, label: str, has_reference_files: bool) -> str | None:
    """The label ``--continue_train auto`` resumes from, or None to start fresh."""
    wanted = full_path(exp_dir, label)
    if wanted.is_file():
        problem = full_checkpoint_problem(wanted)
        if problem is None:
            return label
        fallback = newest_loadable(exp_dir, skip=wanted)
        if fallback is None:
            raise CheckpointError(f"{wanted}: not a loadable checkpoint ({problem}), and no other one in {exp_dir} "
                                  "loads; --overwrite starts again")
        log.warning("%s does not load (%s); resuming from %s, the newest checkpoint that does", wanted, problem,
                    fallback.name)
        return fallback.stem
    if has_reference_files:
        return label
    if full_checkpoints(exp_dir):
        fallback = newest_loadable(exp_dir)
        if fallback is None:
            raise CheckpointError(f"{exp_dir} holds checkpoints but none of them loads; --overwrite starts again")
        log.warning("%s does not exist; resuming from %s, the newest checkpoint", wanted, fallback.name)
        return fallback.stem
    return None


def reference_files(exp_dir: Path, label: str) -> tuple[Path, Path] | None:
    """The reference implementation's G and D files for ``label``, if both exist."""
    g, d = reference_paths(exp_dir, label)
    return (g, d) if g.is_file() and d.is_file() else None


def recipe_forgotten(saved: dict, opt: argparse.Namespace) -> str | None:
    """A resume that leaves out the ``--recipe`` the run was trained with would go on with other
    flags (some of which, such as the weight average, change nothing a spec check sees). A typed
    ``--recipe`` is a deliberate change and applies."""
    trained, now = saved.get("recipe"), getattr(opt, "recipe", None)
    if trained is None or now is None or trained == now or "recipe" in getattr(opt, "explicit", ()):
        return None
    return f"checkpoint was trained with --recipe {trained}; add --recipe {trained} to resume it"


def recipe_switched(saved: dict, opt: argparse.Namespace) -> str:
    """Where a typed ``--recipe`` other than the checkpoint's is behind an architecture the
    checkpoint does not have, the words that say so (the user typed the recipe, not its flags)."""
    trained, now = saved.get("recipe"), getattr(opt, "recipe", None)
    if now is None or trained == now or "recipe" not in getattr(opt, "explicit", ()):
        return ""
    return f" (--recipe {now} sets it; the checkpoint was trained with --recipe {trained or 'none'})"


def resumable_labels(exp_dir: Path) -> list[str]:
    """The labels a resume can name: full checkpoints, and the reference's G and D pairs."""
    full = {p.stem for p in exp_dir.glob("*.pt") if "_net_" not in p.name}
    pairs = {p.name.removesuffix("_net_G.pth") for p in exp_dir.glob("*_net_G.pth")}
    return sorted(full | {label for label in pairs if reference_files(exp_dir, label)})


def require_resumable(exp_dir: Path, label: str) -> None:
    """CheckpointError, naming what is there, unless ``label`` is a full checkpoint or a whole
    pair of the reference's files: said before anything is read from the folder's options."""
    if full_path(exp_dir, label).is_file() or reference_files(exp_dir, label):
        return
    g_file, d_file = reference_paths(exp_dir, label)
    if g_file.is_file():   # half of the reference's pair: say which half is missing
        raise CheckpointError(f"{d_file}: missing beside the reference's {g_file.name}; going on with training "
                              "needs both G and D (test.py, translate.py and serve.py need only G)")
    saved = ", ".join(resumable_labels(exp_dir)) or "none"
    raise CheckpointError(f"{full_path(exp_dir, label)}: no such checkpoint to resume from (--continue_train "
                          f"{label_option(label)}); saved: {saved}")


def resume_training(exp_dir: Path, label: str, model, opt: argparse.Namespace, rank: int = 0,
                    world_size: int = 1,
                    on_execution: Callable[[Execution | None], None] | None = None) -> TrainState:
    """Load a full checkpoint into ``model`` and return the counters to go on from.

    ``model`` hands down what the engine may not import: ``architecture_from_options`` (the
    specs of a version 1 file), ``architecture_mismatch`` (saved specs against its own) and
    ``load_reference_net`` (the reference's layout). With the number of processes it was saved
    with, each rank gets its own RNG streams back and resumes at its exact sample. With another
    number, rank r restarts its streams from (seed, rank, step) and the position inside the
    epoch is rebased on the samples already taken by all processes (the rest of that epoch is
    then sharded differently).

    ``on_execution`` gets the checkpoint's recorded precision and OpenMP waiting (None for the
    reference's files, which record none) before its state is loaded, so that the model can
    take that precision, and make the loss scalers it needs, first."""
    path = full_path(exp_dir, label)
    require_resumable(exp_dir, label)
    if not path.is_file():
        if on_execution is not None:
            on_execution(None)
        return resume_from_reference(exp_dir, label, model, opt, rank)
    try:
        raw = load_file(path, map_location=model.device)
    except CheckpointError as err:
        # Name the way out: the newest checkpoint that does load (a kill cannot leave a bad
        # file, but a disk or a copy can).
        raise CheckpointError(f"{err}; {resume_hint(exp_dir, skip=path)}") from None
    if kind_of(raw) != "full":
        raise CheckpointError(f"{path}: not a full training checkpoint of this program")
    ckpt = upgrade(raw, path, model.architecture_from_options)
    saved_options = ckpt.get("options") or {}
    problem = recipe_forgotten(saved_options, opt) or model.architecture_mismatch(ckpt["specs"])
    if problem:
        raise CheckpointError(f"{path}: {problem}{recipe_switched(saved_options, opt)}")
    if on_execution is not None:
        on_execution(Execution.from_dict(ckpt["execution"]))
    try:
        model.load_state_dict(ckpt)
    except (RuntimeError, KeyError, ValueError) as err:
        raise CheckpointError(f"{path}: does not fit this model ({first_line(err)})") from None
    state = TrainState(**ckpt["state"])
    saved_world = ckpt.get("world_size", 1)
    per_rank = ckpt.get("rng_per_rank", [ckpt["rng"]])
    if saved_world == world_size and len(per_rank) == world_size:
        restore_rng_state(per_rank[rank])
    else:
        seed_everything(opt.seed + rank + world_size * (state.step + 1))
        state.epoch_samples = state.epoch_samples * saved_world // world_size
    return state


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
            raise CheckpointError(f"{path}: {first_line(err)}") from None
    seed_everything(opt.seed + rank)
    return TrainState(epoch=opt.epoch_count)
