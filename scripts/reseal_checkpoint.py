"""Seal checkpoint files edited on purpose anew: every file this program writes carries a digest
of its contents, and a file whose contents were changed afterwards (its options edited with
torch.load / torch.save, say) is refused as damaged until it is sealed again.

    python scripts/reseal_checkpoint.py checkpoints/facades/latest.pt checkpoints/facades/latest_net_G.pt

Only for files whose change you made yourself: sealing a file damaged on a disk or in a copy makes
the damage load.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from engine.checkpoint.files import CheckpointError
from engine.checkpoint.format import reseal


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="reseal_checkpoint.py", description="Seal edited checkpoint files anew.")
    parser.add_argument("files", type=Path, nargs="+", help="checkpoint (.pt) or generator (_net_G.pt) files")
    args = parser.parse_args(argv)
    for path in args.files:
        try:
            fmt = reseal(path)
        except CheckpointError as err:
            print(f"reseal_checkpoint.py: error: {err}", file=sys.stderr)
            return 1
        print(f"{path}: sealed ({fmt})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
