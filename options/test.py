"""Test options (on top of the base options)."""
from __future__ import annotations

import argparse

from options.base import positive_int


def add_test_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("testing")
    g.add_argument("--results_dir", default="./results", help="where result pages are written")
    g.add_argument("--aspect_ratio", type=float, default=1.0, help="width/height of the saved images")
    g.add_argument("--phase", default="test", help="subfolder of --dataroot to run on")
    g.add_argument("--eval", action="store_true",
                   help="eval mode: norm layers per --bn_eval (running statistics by default) and no dropout. "
                        "Without it G runs as in the paper: batch statistics and dropout on")
    g.add_argument("--num_test", type=positive_int, default=50, help="how many test images to run")
    add_norm_behaviour_options(p)


def add_norm_behaviour_options(p: argparse.ArgumentParser) -> None:
    from models.batchnorm import BN_EVAL_MODES
    from options.base import choices_help

    g = p.add_argument_group("norm and dropout behaviour at test time")
    g.add_argument("--bn_eval", default="running", choices=BN_EVAL_MODES.choices(),
                   help=choices_help(BN_EVAL_MODES, "with --eval, how batch norm layers normalize:"))
    g.add_argument("--bn_precise_batches", type=positive_int, default=50,
                   help="training batches used to recompute statistics with --bn_eval precise")
    g.add_argument("--dropout", default=None, choices=["on", "off"],
                   help="dropout at test time; default: on without --eval (paper), off with --eval")
    g.add_argument("--inspect_layers", default="",
                   help="comma-separated generator stages (e.g. down3,up2) whose activations, gradients "
                        "and feature maps are added to the results page")
