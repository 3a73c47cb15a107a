"""Compare training runs on one page: ``python compare.py checkpoints/a checkpoints/b ...``.

Each run is an experiment folder (``train_opt.txt``, ``loss_log.jsonl``) that test.py has
tested (``<results_dir>/<name>/<phase>_<epoch>/metrics.json``). The page overlays the loss and
validation curves, lists the options that differ, tables the test metrics with the best of
each marked, and shows the same test images of every run side by side. It is one file.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from options.base import OneLineParser
from options.numbers import non_negative_int, positive_int
from reporting.compare_page import write_compare_page
from reporting.run_summary import load_run
from util.errors import UserError


def build_parser() -> argparse.ArgumentParser:
    # One line for a bad command line, as every other driver (not argparse's usage block).
    p = OneLineParser(prog="compare.py", description="Compare training runs on one self-contained page.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("runs", nargs="+", type=Path, help="experiment folders (checkpoints/<name>), two or more")
    p.add_argument("--results_dir", type=Path, default=Path("./results"), help="where test.py wrote its results")
    p.add_argument("--phase", default="test", help="the split test.py ran on")
    p.add_argument("--epoch", default="latest", help="the checkpoint test.py tested (latest, best, an epoch)")
    p.add_argument("--load_iter", type=non_negative_int, default=0, help="as test.py's --load_iter: the save kept at N samples")
    p.add_argument("--out", type=Path, default=Path("compare.html"), help="the page to write")
    p.add_argument("--max_images", type=positive_int, default=12, help="test images to show side by side")
    p.add_argument("--image_width", type=positive_int, default=128, help="width of each image on the page, in pixels")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        runs = [load_run(folder, args.results_dir, args.phase, args.epoch, args.load_iter) for folder in args.runs]
        page = write_compare_page(runs, args.out, max_images=args.max_images, image_width=args.image_width,
                                  warn=lambda message: print(f"compare.py: warning: {message}", file=sys.stderr))
    except UserError as err:   # one line; anything else is a bug and keeps its traceback
        print(f"compare.py: error: {err}", file=sys.stderr)
        return 1
    except OSError as err:
        print(f"compare.py: error: {err.filename or args.out}: {err.strerror or err}", file=sys.stderr)
        return 1
    print(f"wrote {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
