"""Checkpoints (and exported models: tests/test_export.py) are written through a temporary file and a rename; their
mode must be what a plain ``open`` gives under the same umask (mkstemp's 0600 locked out every
other account: a shared --checkpoints_dir, serve.py run as a service user)."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from engine.checkpoint import save_atomic


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def plain_file_mode(folder: Path) -> int:
    """The oracle: the mode the OS gives a file opened for writing under the current umask."""
    probe = folder / "plain"
    with open(probe, "w"):
        pass
    return mode(probe)


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o077])
def test_a_checkpoint_gets_the_umasks_mode(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        save_atomic({"x": 1}, tmp_path / "latest.pt")
        expected = plain_file_mode(tmp_path)
    finally:
        os.umask(old)
    assert mode(tmp_path / "latest.pt") == expected == 0o666 & ~umask
