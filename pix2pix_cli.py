"""The console scripts (``pix2pix-train``, ``pix2pix-test``, ...): each runs its driver file
exactly as ``python <driver>.py`` does, under the name ``__main__``.

By file rather than by import: ``test`` as a module name is Python's own test package, and
train.py's ``__main__`` block (how a torchrun rank leaves) must run as it does from a clone.
"""
from __future__ import annotations

import importlib.util
import runpy
import sys
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent


def _run(driver: str) -> None:
    # run_path sets sys.argv[0] and __main__.__file__ to the driver, so --help names it and
    # processes started with spawn re-import the driver, not this module.
    runpy.run_path(str(HERE / f"{driver}.py"), run_name="__main__")


def driver_module(driver: str) -> ModuleType:
    """A driver imported as a module (``pix2pix_test`` for test.py), for programs that call its
    ``main`` in process: ``import test`` would find Python's own test package first."""
    name = f"pix2pix_{driver}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, HERE / f"{driver}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module   # dataclasses look their module up there
        spec.loader.exec_module(module)
    return sys.modules[name]


def train() -> None:
    _run("train")


def test() -> None:
    _run("test")


def translate() -> None:
    _run("translate")


def serve() -> None:
    _run("serve")


def export() -> None:
    _run("export")


def compare() -> None:
    _run("compare")
