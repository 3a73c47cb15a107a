"""The experiment folder as a training run starts writing to it.

Called only once every check that can refuse the run has passed (options, data, validation
split, checkpoint compatibility), so that a refused run leaves the folder as it was, or
uncreated. A fresh run (``--overwrite``, or a folder without checkpoints) moves what an
earlier run wrote there into ``overwritten_<time>/``: nothing is deleted, and nothing of the earlier
run (an ``<epoch>.pt``, an ``iter_<N>.pt``, an ONNX export, a best) stays where the loaders
(``--epoch N``, ``--continue_train auto``) would find it: they look only at the top folder.
"""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Sequence

from engine.checkpoint import remove_stray_temporaries
from reporting.run_summary import OPTIONS_FILE

log = logging.getLogger("train")

PREVIOUS_RUN_PREFIX = "overwritten_"
# What a run writes into its folder, and so what a fresh run moves aside. Named, not "everything":
# the folder may hold things that are no run's (a dataset a user keeps there is read by this run).
# Here the checkpoints (full ``*.pt``; ``<label>_net_G.*``: ours, the reference's .pth, export.py's
# .onnx; the reference's ``_net_D.pth``) and the options file; the caller adds what the displays
# and validation write (``outputs``), which those name.
RUN_FILE_PATTERNS = ("*.pt", "*_net_G.*", "*_net_D.*", OPTIONS_FILE)


def previous_run_folder(exp_dir: Path) -> Path:
    """A new ``overwritten_<YYYYmmdd-HHMMSS>`` folder (``-2``, ``-3``... within one second)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in range(1, 1000):
        folder = exp_dir / f"{PREVIOUS_RUN_PREFIX}{stamp}{'' if n == 1 else f'-{n}'}"
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            continue
    raise FileExistsError(f"{exp_dir}: too many {PREVIOUS_RUN_PREFIX}{stamp}* folders")


def move_previous_run(exp_dir: Path, outputs: Sequence[str] = ()) -> Path | None:
    """Move an earlier run's files (``RUN_FILE_PATTERNS`` and ``outputs``) into a new ``overwritten_<time>/``
    (earlier ``overwritten_*`` folders stay at the top rather than nest); returns it, or None when
    there was nothing to move. Renames within one folder: no copy, and a kill halfway leaves each
    file whole in one place or the other."""
    leftovers = sorted({p for pattern in (*RUN_FILE_PATTERNS, *outputs) for p in exp_dir.glob(pattern)})
    if not leftovers:
        return None
    target = previous_run_folder(exp_dir)
    for path in leftovers:
        os.replace(path, target / path.name)
    log.info("the previous run's files are in %s; delete it when you no longer need them", target)
    return target


def prepare_folder(exp_dir: Path, fresh: bool, options_text: str, outputs: Sequence[str] = ()) -> Path | None:
    """Create the folder, clear what interrupted writes left, move an earlier run's files aside
    for a ``fresh`` run (``outputs``: what the displays and validation write, besides the
    checkpoints), and write the options file. Returns where the earlier run's files went.
    Main process only."""
    exp_dir.mkdir(parents=True, exist_ok=True)
    remove_stray_temporaries(exp_dir)
    moved = move_previous_run(exp_dir, outputs) if fresh else None
    (exp_dir / OPTIONS_FILE).write_text(options_text)
    return moved
