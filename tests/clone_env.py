"""How the tests start a benchmark or a datasets/ tool as a script (``python benchmarks/X.py``).

Such a script imports the project's packages, which `pip install -e .` (install.sh) makes
importable in the environment. The environment the tests run in may hold the requirements
without the project itself, so the child gets the clone's root on PYTHONPATH: what the
editable install would give it, nothing more.
"""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def clone_env(**extra: str) -> dict[str, str]:
    paths = [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths), **extra}
