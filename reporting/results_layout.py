"""Where test.py puts one test's results and what its images are called: written by test.py,
read by compare.py.

The folder is named as the reference implementation names it, ``<phase>_<epoch>`` and, for a
save picked by ``--load_iter N``, ``<phase>_<epoch>_iter<N>``, so scripts written for its
results find ours.

Images are named after their input's file stem (``x.png`` -> ``x_fake_B.png``). Stems are not
unique in a split (``sub1/x.png`` and ``sub2/x.png``; ``a.png`` and ``a.jpg``), and two inputs
under one name would leave one set of results on disk while the page and the metrics counted
two; so a later input whose stem is taken gets what tells it apart in its name: its folder
(``sub2_x``) or, beside the first, its extension (``a_jpg``). Names are told apart without regard
to case or Unicode form (``A.png`` and ``a.png`` -> ``A``, ``a_png``; an accent composed or
combining): results copied to macOS or Windows, whose file systems fold both, would otherwise
overwrite one another.
"""
from __future__ import annotations

import itertools
import unicodedata
from pathlib import Path, PurePath
from typing import Iterator


def folded(name: str) -> str:
    """``name`` as file systems that fold case and Unicode forms (macOS, Windows) see it: two
    names with one folded form would be one file there."""
    return unicodedata.normalize("NFC", name).casefold()


def results_folder(results_dir: str | Path, name: str, phase: str, epoch: str, load_iter: int = 0) -> Path:
    folder = f"{phase}_{epoch}" + (f"_iter{load_iter}" if load_iter > 0 else "")
    return Path(results_dir) / name / folder


class ResultNames:
    """A distinct, readable name for each input path, in the order they are asked for."""

    def __init__(self) -> None:
        self._owner: dict[str, PurePath] = {}   # name, folded -> the path it was given to

    def name_for(self, path: str) -> str:
        mine = PurePath(path)
        for candidate in _candidates(mine, self._owner.get(folded(mine.stem))):
            if self._owner.setdefault(folded(candidate), mine) == mine:
                return candidate
        raise AssertionError("unreachable: the numbered candidates never run out")


def _candidates(path: PurePath, first: PurePath | None) -> Iterator[str]:
    """The stem; then what tells ``path`` from ``first``, the path that has the stem: the folders
    up to the first one that differs (``sub2_x``) or, in the same folder, the extension
    (``a_jpg``); then more folders; then numbers."""
    yield path.stem
    folders = path.parent.parts[1:] if path.parent.anchor else path.parent.parts
    if first is not None and path.parent == first.parent and path.suffix:
        yield f"{path.stem}_{path.suffix.lstrip('.')}"
    elif first is not None:
        theirs = first.parent.parts
        depth = 1
        while depth < len(folders) and folders[-depth:] == theirs[-depth:]:
            depth += 1
        yield "_".join((*folders[-depth:], path.stem))
    for depth in range(1, len(folders) + 1):
        yield "_".join((*folders[-depth:], path.stem))
    yield from (f"{path.stem}_{n}" for n in itertools.count(2))
