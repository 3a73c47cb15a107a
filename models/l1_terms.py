"""The L1 term of pix2pix, optionally on downsampled images (``--l1_downsample K``).

With pairs that are slightly misaligned (scans, photos of prints), an L1 taken pixel by pixel
is lowest for the per-pixel median of the possible shifts, which erases thin detail and blurs
edges. Taken on K x K block averages (average pooling), the term only asks the output to put
the right amount of each tone in each block, so a shift of a pixel or two costs little and
the detail is left to the adversarial term.
"""
from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F


def add_l1_options(group: argparse._ArgumentGroup) -> None:
    from options.base import positive_int   # options import the models; keep this module light

    group.add_argument("--l1_downsample", type=positive_int, default=1,
                       help="take the L1 term on K-times average-pooled images (e.g. 4 for pairs misaligned by "
                            "2-3 px); 1: pixel by pixel, as the paper")


def l1_term(fake: torch.Tensor, real: torch.Tensor, downsample: int = 1) -> torch.Tensor:
    """Mean absolute difference of (N, C, H, W) images after ``downsample`` x ``downsample``
    average pooling (edge blocks that are cut short average the pixels they have)."""
    if downsample > 1:
        fake = F.avg_pool2d(fake, downsample, ceil_mode=True)
        real = F.avg_pool2d(real, downsample, ceil_mode=True)
    return F.l1_loss(fake, real)
