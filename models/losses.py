"""Adversarial objectives by name (``--gan_mode``) and the WGAN-GP gradient penalty.

Every objective works on raw discriminator outputs (logits), so no sigmoid sits in D.
``gp_weight`` in an entry's meta is the weight of the gradient penalty the D step adds.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from util.registry import Registry


class GANObjective:
    """Loss of D on real pairs, of D on fake pairs, and of G (fooling D)."""

    def real_loss(self, logits: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def fake_loss(self, logits: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def generator_loss(self, logits: torch.Tensor) -> torch.Tensor:
        return self.real_loss(logits)


class VanillaGAN(GANObjective):
    def real_loss(self, logits: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))

    def fake_loss(self, logits: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits))


class LSGAN(GANObjective):
    def real_loss(self, logits: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(logits, torch.ones_like(logits))

    def fake_loss(self, logits: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(logits, torch.zeros_like(logits))


class WassersteinGAN(GANObjective):
    def real_loss(self, logits: torch.Tensor) -> torch.Tensor:
        return -logits.mean()

    def fake_loss(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.mean()


class HingeGAN(GANObjective):
    def real_loss(self, logits: torch.Tensor) -> torch.Tensor:
        return F.relu(1.0 - logits).mean()

    def fake_loss(self, logits: torch.Tensor) -> torch.Tensor:
        return F.relu(1.0 + logits).mean()

    def generator_loss(self, logits: torch.Tensor) -> torch.Tensor:
        return -logits.mean()


GAN_LOSSES: Registry[Callable[[], GANObjective]] = Registry("--gan_mode")
GAN_LOSSES.add("vanilla", VanillaGAN, gp_weight=0.0, help="cross-entropy on logits (paper)")
GAN_LOSSES.add("lsgan", LSGAN, gp_weight=0.0, help="least squares")
GAN_LOSSES.add("wgangp", WassersteinGAN, gp_weight=10.0,
               help="Wasserstein loss + gradient penalty (weight 10) on real/fake interpolates")
GAN_LOSSES.add("hinge", HingeGAN, gp_weight=0.0, help="hinge loss")


def gradient_penalty(discriminator: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """E[(||grad_x D(x)||_2 - 1)^2] at random points between real and fake (Gulrajani et al.).

    ``real`` and ``fake`` are the conditional pairs (A and B concatenated); the result keeps
    its graph so that the D step's backward trains D through it.
    """
    alpha = torch.rand(real.size(0), 1, 1, 1, device=real.device, dtype=real.dtype)
    mixed = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    out = discriminator(mixed)
    (grad,) = torch.autograd.grad(out.sum(), mixed, create_graph=True)
    return ((grad.flatten(1).norm(2, dim=1) - 1.0) ** 2).mean()
