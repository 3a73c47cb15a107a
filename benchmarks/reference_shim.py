"""The reference's own interpreter. Which torch an interpreter imports (``torch_version``), and:
the reference imports ``wandb`` at the top of its visualizer and uses it only with
``--use_wandb``, which no benchmark passes: an empty module put first on its PYTHONPATH stands
in for it, whether or not its interpreter has wandb (so its start-up does not pay for the import).
"""
from __future__ import annotations

import functools
import subprocess
from pathlib import Path


@functools.lru_cache(maxsize=None)
def torch_version(python: str) -> str:
    """The torch version ``python`` imports ('' when it has none); asked once per interpreter."""
    return subprocess.run([python, "-c", "import torch; print(torch.__version__)"], capture_output=True,
                          text=True, timeout=120).stdout.strip()


def wandb_shim(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "wandb.py").write_text('"""Empty stand-in: the benchmark never passes --use_wandb."""\nrun = None\n')
    return folder
