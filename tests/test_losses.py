from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from models.losses import GAN_LOSSES, gradient_penalty
from models.networks import build_discriminator
from models.schedulers import LR_POLICIES, EpochScheduler, Schedule, linear_factor


@pytest.mark.parametrize("mode", GAN_LOSSES.names())
def test_gan_losses_are_finite_and_point_the_right_way(mode: str) -> None:
    gan = GAN_LOSSES.get(mode)()
    confident_real = torch.full((2, 1, 4, 4), 1.0)  # the LSGAN target for real
    confident_fake = torch.full((2, 1, 4, 4), 0.0)  # the LSGAN target for fake
    for value in (gan.real_loss(confident_real), gan.fake_loss(confident_fake), gan.generator_loss(confident_fake)):
        assert torch.isfinite(value)
    # D is rewarded for high logits on real and low ones on fake; G for high logits on fake.
    assert gan.real_loss(confident_real) < gan.real_loss(confident_fake)
    assert gan.fake_loss(confident_fake) < gan.fake_loss(confident_real)
    assert gan.generator_loss(confident_real) < gan.generator_loss(confident_fake)


def test_gradient_penalty_is_nonzero_and_trains_d() -> None:
    torch.manual_seed(0)
    net_d = build_discriminator("basic", input_nc=6, ndf=8, n_layers=3, norm="instance")
    real, fake = torch.randn(2, 6, 32, 32), torch.randn(2, 6, 32, 32)
    penalty = gradient_penalty(net_d, real, fake)
    assert penalty.item() > 0
    penalty.backward()
    # Every weight gets a gradient (the last bias cannot: it does not change dD/dx).
    grads = [p.grad for p in net_d.parameters() if p.dim() > 1]
    assert all(g is not None for g in grads) and sum(g.abs().sum() for g in grads) > 0
    assert GAN_LOSSES.entry("wgangp").meta["gp_weight"] == 10.0


# Four discriminator logits, written out, and each objective's losses on them by hand:
# softplus(z) = log(1 + e^z); BCE with target 1 is softplus(-x), with target 0 softplus(x).
LOGITS = [-2.0, 0.0, 0.5, 3.0]                     # mean 0.375
SOFTPLUS = lambda z: math.log(1 + math.exp(z))    # noqa: E731
HAND = {
    #            D on real                              D on fake                         G on fake
    "vanilla": (sum(SOFTPLUS(-x) for x in LOGITS) / 4, sum(SOFTPLUS(x) for x in LOGITS) / 4,
                sum(SOFTPLUS(-x) for x in LOGITS) / 4),
    # (x - 1)^2: 9, 1, 0.25, 4; x^2: 4, 0, 0.25, 9
    "lsgan": (14.25 / 4, 13.25 / 4, 14.25 / 4),
    # -mean, mean, -mean
    "wgangp": (-0.375, 0.375, -0.375),
    # relu(1 - x): 3, 1, 0.5, 0; relu(1 + x): 0, 1, 1.5, 4; G: -mean(x)
    "hinge": (4.5 / 4, 6.5 / 4, -0.375),
}


def test_every_gan_mode_has_a_hand_computed_row() -> None:
    assert sorted(HAND) == sorted(GAN_LOSSES.names())
    # The vanilla row in numbers, so a wrong formula above cannot hide: (2.126928 + 0.693147
    # + 0.474077 + 0.048587) / 4 on real, 0.375 (the mean logit) more on fake.
    assert HAND["vanilla"][0] == pytest.approx(0.835685, abs=1e-6)
    assert HAND["vanilla"][1] - HAND["vanilla"][0] == pytest.approx(0.375)


@pytest.mark.parametrize("mode", sorted(HAND))
def test_gan_losses_equal_the_hand_computed_values(mode: str) -> None:
    gan = GAN_LOSSES.get(mode)()
    logits = torch.tensor(LOGITS).reshape(1, 1, 2, 2)   # a 2x2 PatchGAN map
    real, fake, generator = HAND[mode]
    assert gan.real_loss(logits).item() == pytest.approx(real, abs=1e-6)
    assert gan.fake_loss(logits).item() == pytest.approx(fake, abs=1e-6)
    assert gan.generator_loss(logits).item() == pytest.approx(generator, abs=1e-6)


class Quadratic(nn.Module):
    """D(x) = w/2 * |x|^2 per sample: its input gradient is w * x, known in closed form."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor(1.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * self.w * (x ** 2).flatten(1).sum(1)


def test_gradient_penalty_equals_the_hand_computed_value_and_its_gradient() -> None:
    # real == fake, so every interpolate is that point whatever alpha: sample 0 is (3, 4),
    # |grad| = 5, (5 - 1)^2 = 16; sample 1 is (0, 0.5), |grad| = 0.5, 0.25. Mean 8.125.
    points = torch.tensor([[3.0, 4.0], [0.0, 0.5]]).reshape(2, 2, 1, 1)
    net_d = Quadratic()
    penalty = gradient_penalty(net_d, points, points.clone())
    assert penalty.item() == pytest.approx(8.125)
    # d/dw mean((w|x| - 1)^2) = mean(2 (w|x| - 1) |x|) at w = 1: (40 - 0.5) / 2 = 19.75; the
    # penalty keeps its graph, so D's backward reaches w through the input gradient.
    penalty.backward()
    assert net_d.w.grad.item() == pytest.approx(19.75)


def test_gradient_penalty_is_taken_between_real_and_fake() -> None:
    """Where real and fake differ, at alpha * real + (1 - alpha) * fake with one alpha per
    sample (the same draws, replayed from the seed); the oracle is numpy."""
    real = np.array([[1.0, 2.0, 0.0], [0.5, -1.0, 2.0]], dtype=np.float32)
    fake = np.array([[-1.0, 0.0, 1.0], [0.0, 0.0, 0.0]], dtype=np.float32)
    torch.manual_seed(7)
    alpha = torch.rand(2).numpy()[:, None]
    mixed = alpha * real + (1 - alpha) * fake
    expected = np.mean((np.linalg.norm(mixed, axis=1) - 1) ** 2)
    torch.manual_seed(7)
    penalty = gradient_penalty(Quadratic(), torch.from_numpy(real).reshape(2, 3, 1, 1),
                               torch.from_numpy(fake).reshape(2, 3, 1, 1))
    assert penalty.item() == pytest.approx(float(expected), rel=1e-6)


def test_linear_policy_never_trains_at_zero() -> None:
    assert linear_factor(1, 1, 0) == 1.0            # one-epoch run
    assert linear_factor(1, 0, 1) == 0.5            # only a decay epoch: half, not zero
    factors = [linear_factor(e, 100, 100) for e in range(1, 201)]
    assert factors[:100] == [1.0] * 100 and min(factors) > 0 and factors[-1] == pytest.approx(1 / 101)


@pytest.mark.parametrize("policy", LR_POLICIES.names())
def test_schedulers_step_per_epoch(policy: str) -> None:
    opt = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched = EpochScheduler(policy, opt, Schedule(n_epochs=2, n_epochs_decay=2, lr_decay_iters=1))
    lrs = [sched.lr()]
    # plateau needs more than its patience (5) to react; the others run the planned 4 epochs.
    for _ in range(8 if policy == "plateau" else 4):
        sched.step(1.0)
        lrs.append(sched.lr())
    assert lrs[0] == 1.0 and all(lr >= 0 for lr in lrs)
    assert lrs[-1] < 1.0
    restored = EpochScheduler(policy, torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=1.0),
                              Schedule(2, 2, lr_decay_iters=1))
    restored.load_state_dict(sched.state_dict())
    assert restored.state_dict()["last_epoch"] == sched.state_dict()["last_epoch"]
