"""Options of the own-data features: the depth results are written at, and the L1 term on
downsampled images (what they do: reporting/result_files.py, models/l1_terms.py)."""
from __future__ import annotations

import argparse

from options.base import choices_help, positive_int
from reporting.result_files import OUTPUT_BITS


def add_output_bits_option(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--output_bits", default="auto", choices=OUTPUT_BITS.choices(),
                       help=choices_help(OUTPUT_BITS, "bit depth of written results:"))


def add_l1_options(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--l1_downsample", type=positive_int, default=1,
                       help="take the L1 term on K-times average-pooled images (e.g. 4 for pairs misaligned by "
                            "2-3 px); 1: pixel by pixel, as the paper")
