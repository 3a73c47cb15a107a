"""Where the benchmarks that train or test on a real data set find it: ``--dataroot``, by
default the folder of this clone where datasets/download_pix2pix_dataset.sh leaves the set.

Kept free of torch, so that a benchmark can parse its command line before torch is loaded.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOWNLOAD_SCRIPT = "datasets/download_pix2pix_dataset.sh"
FACADES = ROOT / "datasets" / "facades"


def shown(path: Path) -> str:
    """A path inside the clone as the user would type it from its root."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def add_dataroot_option(p: argparse.ArgumentParser, default: Path = FACADES, set_name: str = "facades",
                        flag: str = "--dataroot") -> None:
    p.add_argument(flag, type=Path, default=default,
                   help=f"the {set_name} set (default: {shown(default)}, where "
                        f"'bash {DOWNLOAD_SCRIPT} {set_name}' puts it)")


def check_dataroot(program: str, path: Path, set_name: str = "facades", flag: str = "--dataroot") -> None:
    """Stop with one line that says how to get the set when its folder is missing."""
    if not Path(path).is_dir():
        sys.exit(f"{program}: error: {flag} {path}: no such folder; get the {set_name} set with "
                 f"'bash {DOWNLOAD_SCRIPT} {set_name}' (it lands in {shown(ROOT / 'datasets' / set_name)}) "
                 f"or give {flag}")
