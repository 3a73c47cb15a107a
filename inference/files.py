"""Which files translate.py reads and where each result goes.

An input file ``photo.jpg`` becomes ``<output>/photo.png``; a folder is read recursively and
its subfolders are kept, so results line up with their inputs by name. Two inputs of one stem in
one folder (``a.jpg``, ``a.png``) are told apart by test.py's rule (reporting/results_layout.py):
the later one's result is ``a_png.png``. No result may be
written over an input of the same run: an --output inside --input is not read as input (a
rerun would translate its own earlier results), and a run whose result would replace one of
its inputs is refused before anything is written.
"""
from __future__ import annotations

import itertools
import logging
import os
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from reporting.result_files import result_suffix
from reporting.results_layout import ResultNames, folded
from util.errors import UserError

log = logging.getLogger(__name__)

# Every suffix a result can get (the colour/bit-depth rule lives in reporting/result_files.py):
# ``photo.png`` may be written as ``photo.tif``, so both names are checked against the inputs.
RESULT_SUFFIXES = frozenset(result_suffix(channels, bits) for channels in (1, 2, 3, 4) for bits in (8, 16))


class TranslateInputError(UserError, ValueError):
    """--input or --output cannot be used; the message is one line that names the path."""


@dataclass(frozen=True)
class Job:
    source: Path
    target: Path


def list_jobs(input_path: Path, output_dir: Path, extensions: Collection[str]) -> list[Job]:
    """One job per image under ``input_path`` (a file or a folder), in sorted order."""
    if not input_path.exists():
        raise TranslateInputError(f"{input_path}: --input does not exist")
    if output_dir.exists() and not output_dir.is_dir():
        raise TranslateInputError(f"{output_dir}: --output exists and is not a folder")
    if input_path.is_file():
        if input_path.suffix.lower() not in extensions:
            raise TranslateInputError(f"{input_path}: --input is not an image file (accepted extensions: "
                                      f"{', '.join(sorted(extensions))})")
        jobs = [Job(input_path, output_dir / f"{input_path.stem}.png")]
    else:
        jobs = _folder_jobs(input_path, output_dir, extensions)
    if output_dir.resolve() == input_path.resolve():
        raise TranslateInputError(f"{output_dir}: --output must differ from --input, or results would "
                                  "replace the inputs")
    _refuse_overwriting_inputs(jobs)
    return sorted(jobs, key=lambda j: str(j.source))


def _folder_jobs(input_path: Path, output_dir: Path, extensions: Collection[str]) -> list[Job]:
    jobs: list[Job] = []
    skipped: Counter[str] = Counter()
    output_resolved = output_dir.resolve()
    out_folders = {input_path: output_dir}   # each input folder's results folder
    for dirpath, dirnames, filenames in os.walk(input_path, followlinks=True):
        here = out_folders[Path(dirpath)]
        kept = []
        for d in sorted(dirnames):
            if d.startswith("."):
                continue
            if (Path(dirpath) / d).resolve() == output_resolved:
                # Earlier results of this very command: reading them would translate them again.
                log.info("not reading %s: it is --output", Path(dirpath) / d)
                continue
            kept.append(d)
        dirnames[:] = kept
        # Results keep their inputs' folders, so only siblings clash; sibling folders whose names
        # differ only in case (Sub/, sub/) would be one folder on macOS or Windows: numbered apart.
        taken: set[str] = set()
        for d in kept:
            candidates = itertools.chain([d], (f"{d}_{i}" for i in itertools.count(2)))
            out_name = next(n for n in candidates if folded(n) not in taken)
            taken.add(folded(out_name))
            out_folders[Path(dirpath) / d] = here / out_name
        names = ResultNames()
        for name in sorted(filenames):
            source = Path(dirpath) / name
            if name.startswith("."):
                continue
            if source.suffix.lower() not in extensions:
                skipped[source.suffix.lower() or "(no extension)"] += 1
                continue
            target = here / f"{names.name_for(name)}.png"
            jobs.append(Job(source, target))
    if not jobs:
        raise TranslateInputError(f"{input_path}: no images in --input (accepted extensions: "
                                  f"{', '.join(sorted(extensions))})")
    if skipped:
        counts = ", ".join(f"{suffix} ({n})" for suffix, n in sorted(skipped.items()))
        log.info("skipped %d file(s) in %s that are not images by their extension: %s", sum(skipped.values()),
                 input_path, counts)
    return jobs


def _refuse_overwriting_inputs(jobs: list[Job]) -> None:
    """Refuse the run when a result would be written over one of its inputs (an --output that
    is an input's own folder, or a parent of --input), before anything is written."""
    sources = {job.source.resolve(): job.source for job in jobs}
    for job in jobs:
        for suffix in sorted(RESULT_SUFFIXES):
            victim = sources.get(job.target.with_suffix(suffix).resolve())
            if victim is not None:
                raise TranslateInputError(f"{victim}: the result of {job.source} would replace this input; "
                                          "give an --output that holds none of the inputs")
