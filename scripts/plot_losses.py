"""Draw a run's loss curves from its ``loss_log.jsonl`` to a PNG (reporting/plot_losses.py draws).

    python scripts/plot_losses.py checkpoints/facades_pix2pix            # -> .../web/loss_curves.png
    python scripts/plot_losses.py checkpoints/facades_pix2pix/loss_log.jsonl -o losses.png
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from reporting.loss_log import LOSS_LOG_NAME, LossLogError, read_loss_log
from reporting.plot_losses import plot_loss_curves

DEFAULT_PNG = Path("web") / "loss_curves.png"


def resolve_log_path(target: Path) -> Path:
    """Accept an experiment folder or the log file itself."""
    return target / LOSS_LOG_NAME if target.is_dir() else target


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="plot_losses.py", description="Draw a run's loss curves to a PNG.")
    parser.add_argument("target", type=Path, help="experiment folder or its loss_log.jsonl")
    parser.add_argument("-o", "--out", type=Path, default=None,
                        help=f"PNG to write (default: <experiment>/{DEFAULT_PNG.as_posix()})")
    args = parser.parse_args(argv)

    log_path = resolve_log_path(args.target)
    try:
        records = read_loss_log(log_path)
    except LossLogError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not records:
        print(f"error: {log_path}: the loss log has no records yet", file=sys.stderr)
        return 2
    out = args.out if args.out is not None else log_path.parent / DEFAULT_PNG
    try:
        written = plot_loss_curves(records, out, title=log_path.parent.name)
    except OSError as err:
        print(f"error: -o {out}: cannot write the PNG ({err.strerror or err})", file=sys.stderr)
        return 2
    print(f"wrote {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
