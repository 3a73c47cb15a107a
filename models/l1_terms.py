"""The L1 term of pix2pix, optionally on downsampled images (``--l1_downsample K``).

With pairs that are slightly misaligned (scans, photos of prints), an L1 taken pixel by pixel
is lowest for the per-pixel median of the possible shifts, which erases thin detail and blurs
edges. Taken on K x K block averages (average pooling), the term only asks the output to put
the right amount of each tone in each block, so a shift of a pixel or two costs little and
the detail is left to the adversarial term.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def l1_term(fake: torch.Tensor, real: torch.Tensor, downsample: int = 1) -> torch.Tensor:
    """Mean absolute difference of (N, C, H, W) images after ``downsample`` x ``downsample``
    average pooling (edge blocks that are cut short average the pixels they have)."""
    if downsample > 1:
        fake = F.avg_pool2d(fake, downsample, ceil_mode=True)
        real = F.avg_pool2d(real, downsample, ceil_mode=True)
    return F.l1_loss(fake, real)
