from __future__ import annotations

import pytest
import torch

from models.losses import GAN_LOSSES, gradient_penalty
from models.networks import build_discriminator
from models.schedulers import LR_POLICIES, EpochScheduler, linear_factor


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


def test_linear_policy_never_trains_at_zero() -> None:
    assert linear_factor(1, 1, 0) == 1.0            # one-epoch run
    assert linear_factor(1, 0, 1) == 0.5            # only a decay epoch: half, not zero
    factors = [linear_factor(e, 100, 100) for e in range(1, 201)]
    assert factors[:100] == [1.0] * 100 and min(factors) > 0 and factors[-1] == pytest.approx(1 / 101)


@pytest.mark.parametrize("policy", LR_POLICIES.names())
def test_schedulers_step_per_epoch(policy: str) -> None:
    opt = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched = EpochScheduler(policy, opt, n_epochs=2, n_epochs_decay=2, lr_decay_iters=1)
    lrs = [sched.lr()]
    # plateau needs more than its patience (5) to react; the others run the planned 4 epochs.
    for _ in range(8 if policy == "plateau" else 4):
        sched.step(1.0)
        lrs.append(sched.lr())
    assert lrs[0] == 1.0 and all(lr >= 0 for lr in lrs)
    assert lrs[-1] < 1.0
    restored = EpochScheduler(policy, torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=1.0), 2, 2,
                              lr_decay_iters=1)
    restored.load_state_dict(sched.state_dict())
    assert restored.state_dict()["last_epoch"] == sched.state_dict()["last_epoch"]
