"""The reference imports ``wandb`` at the top of its visualizer and uses it only with
``--use_wandb``, which no benchmark passes: an empty module put first on its PYTHONPATH stands
in for it, whether or not its interpreter has wandb (so its start-up does not pay for the import).
"""
from __future__ import annotations

from pathlib import Path


def wandb_shim(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "wandb.py").write_text('"""Empty stand-in: the benchmark never passes --use_wandb."""\nrun = None\n')
    return folder
