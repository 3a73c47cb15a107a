"""Discriminator feature matching (pix2pixHD, Wang et al. 2018), and GAN losses over the one
or several logit maps a discriminator returns.

G is pulled towards making D's intermediate features of the fake pair equal to those of the
real pair, which gives G a denser, more stable signal than D's final verdict alone.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

Tensor = torch.Tensor

# pix2pixHD weighs each of a D's k intermediate layers by 4/k (k = n_layers_D + 1): 1 per
# layer for the 70x70 PatchGAN, and the same total for deeper or shallower Ds.
LAYER_WEIGHT_TOTAL = 4.0


def feature_matching_loss(fake: list[list[Tensor]], real: list[list[Tensor]]) -> Tensor:
    """Mean over scales of sum_j (4/k) * L1(fake_j, real_j) over each scale's k intermediate
    layers (the logits, the last entry of each scale, are left out). Real features are
    constants: only G learns from this loss."""
    if len(fake) != len(real) or not fake:
        raise ValueError(f"feature matching needs the same scales for real and fake, got {len(fake)} and {len(real)}")
    total = fake[0][0].new_zeros((), dtype=torch.float32)
    for fake_scale, real_scale in zip(fake, real):
        layers = list(zip(fake_scale[:-1], real_scale[:-1]))
        if not layers:
            raise ValueError("feature matching needs a discriminator with intermediate layers")
        weight = LAYER_WEIGHT_TOTAL / len(layers)
        for f, r in layers:
            total = total + weight * F.l1_loss(f.float(), r.detach().float())
    return total / len(fake)


def over_scales(loss: Callable[[Tensor], Tensor], logits: Tensor | list[Tensor]) -> Tensor:
    """A GAN loss of one logit map, or the mean of it over a multiscale D's maps (pix2pixHD
    sums them; the mean keeps the GAN term's weight next to --lambda_L1 what it is with one D)."""
    if isinstance(logits, torch.Tensor):
        return loss(logits)
    return torch.stack([loss(x) for x in logits]).mean()
