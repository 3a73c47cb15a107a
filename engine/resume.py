"""Which checkpoint a run resumes from: ``--continue_train`` names one; ``--continue_train auto``
takes the requested one when the experiment folder holds it, falls back to the newest loadable
one when that file is damaged, and starts fresh when the folder holds no checkpoint at all. So a
scheduler, or ``torchrun --max_restarts``, can rerun the very same command after any failure.
"""
from __future__ import annotations

import logging
from pathlib import Path

from engine.checkpoint import FULL_FORMAT, CheckpointError, full_path, load_file

log = logging.getLogger(__name__)

AUTO = "auto"


def full_checkpoints(exp_dir: Path) -> list[Path]:
    """``<label>.pt`` files (not the generator-only ``<label>_net_G.pt``), newest first."""
    found = [p for p in exp_dir.glob("*.pt") if not p.stem.endswith("_net_G")]
    return sorted(found, key=lambda p: p.stat().st_mtime_ns, reverse=True)


def loads(path: Path) -> bool:
    try:
        return load_file(path).get("format") == FULL_FORMAT
    except CheckpointError:
        return False


def newest_loadable(exp_dir: Path, skip: Path | None = None) -> Path | None:
    """The most recently written full checkpoint that loads, other than ``skip``."""
    for path in full_checkpoints(exp_dir):
        if path != skip and loads(path):
            return path
    return None


def label_option(label: str) -> str:
    """The command-line words that select a checkpoint label."""
    if label.startswith("iter_"):
        return f"--load_iter {label[len('iter_'):]}"
    return f"--epoch {label}"


def resume_hint(exp_dir: Path, skip: Path) -> str:
    fallback = newest_loadable(exp_dir, skip)
    if fallback is None:
        return "no other loadable checkpoint in this folder; --overwrite starts again"
    return f"the newest loadable checkpoint is {fallback.name}: resume with --continue_train {label_option(fallback.stem)}"


def auto_resume_label(exp_dir: Path, label: str, has_reference_files: bool) -> str | None:
    """The label ``--continue_train auto`` resumes from, or None to start fresh."""
    wanted = full_path(exp_dir, label)
    if wanted.is_file():
        if loads(wanted):
            return label
        fallback = newest_loadable(exp_dir, skip=wanted)
        if fallback is None:
            raise CheckpointError(f"{wanted}: not a loadable checkpoint, and no other one in {exp_dir} loads; "
                                  "--overwrite starts again")
        log.warning("%s does not load; resuming from %s, the newest checkpoint that does", wanted, fallback.name)
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
