"""Which files translate.py reads and where each result goes.

An input file ``photo.jpg`` becomes ``<output>/photo.png``; a folder is read recursively and
its subfolders are kept, so results line up with their inputs by name.
"""
from __future__ import annotations

import os
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from util.errors import UserError


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
        return [Job(input_path, output_dir / f"{input_path.stem}.png")]

    jobs: list[Job] = []
    claimed: dict[Path, Path] = {}
    for dirpath, dirnames, filenames in os.walk(input_path, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            source = Path(dirpath) / name
            if name.startswith(".") or source.suffix.lower() not in extensions:
                continue
            relative = source.relative_to(input_path)
            target = output_dir / relative.parent / f"{relative.stem}.png"
            if target in claimed:
                # photo.jpg and photo.png would overwrite each other's result.
                raise TranslateInputError(f"{source}: its result {target} would overwrite that of "
                                          f"{claimed[target]}; rename one of them")
            claimed[target] = source
            jobs.append(Job(source, target))
    if not jobs:
        raise TranslateInputError(f"{input_path}: no images in --input (accepted extensions: "
                                  f"{', '.join(sorted(extensions))})")
    if output_dir.resolve() == input_path.resolve():
        raise TranslateInputError(f"{output_dir}: --output must differ from --input, or results would "
                                  "replace the inputs")
    return sorted(jobs, key=lambda j: str(j.source))
