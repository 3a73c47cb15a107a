"""The pix2pix model's training step: what each step updates, and that it learns."""
from __future__ import annotations

import pytest
import torch

from models import create_model
from models.losses import GAN_LOSSES
from options.parse import parse_options
from engine.distributed import Runtime

TINY = ["--dataroot", "unused", "--gpu_ids", "-1", "--netG", "unet_128", "--ngf", "8", "--ndf", "8",
        "--crop_size", "128", "--load_size", "128", "--display_id", "0", "--amp", "none", "--no_dropout"]


def tiny_model(*extra: str):
    torch.manual_seed(0)
    return create_model(parse_options([*TINY, *extra], is_train=True), Runtime(torch.device("cpu")))


def one_pair() -> dict:
    torch.manual_seed(1)
    # A smooth picture and its negative: a mapping a small U-Net learns in a few steps.
    a = torch.nn.functional.interpolate(torch.rand(1, 3, 8, 8) * 2 - 1, size=128, mode="bilinear")
    return {"A": a, "B": -a, "A_paths": ["x.png"], "B_paths": ["x.png"]}


def test_a_few_steps_on_one_pair_reduce_l1() -> None:
    model = tiny_model("--lr", "0.001")
    model.set_input(one_pair())
    first = model.train_step()
    assert set(first) == {"G_GAN", "G_L1", "D_real", "D_fake"}
    assert all(v.requires_grad is False and torch.isfinite(v) for v in first.values())
    for _ in range(25):
        last = model.train_step()
    assert last["G_L1"] < 0.5 * first["G_L1"]
    assert set(model.current_visuals()) == {"real_A", "fake_B", "real_B"}


def test_d_step_leaves_g_alone_and_g_step_leaves_d_alone() -> None:
    model = tiny_model()
    model.set_input(one_pair())
    model.forward()
    g_before = [p.detach().clone() for p in model.net_G.parameters()]
    model.optimizers["D"].zero_grad()
    model.backward_D()
    # fake_B is detached for D: G gets no gradient from D's loss.
    assert all(p.grad is None for p in model.net_G.parameters())
    model.optimizers["D"].step()
    assert all(torch.equal(a, b) for a, b in zip(g_before, model.net_G.parameters()))

    d_before = [p.detach().clone() for p in model.net_D.parameters()]
    for p in model.net_D.parameters():
        p.requires_grad_(False)
        p.grad = None
    model.optimizers["G"].zero_grad()
    model.backward_G()
    assert all(p.grad is None for p in model.net_D.parameters())
    assert all(p.grad is not None for p in model.net_G.parameters())
    model.optimizers["G"].step()
    assert all(torch.equal(a, b) for a, b in zip(d_before, model.net_D.parameters()))


@pytest.mark.parametrize("gan_mode", GAN_LOSSES.names())
def test_every_gan_mode_trains(gan_mode: str) -> None:
    model = tiny_model("--gan_mode", gan_mode, "--norm", "instance")
    model.set_input(one_pair())
    losses = model.train_step()
    assert all(torch.isfinite(v) for v in losses.values())
    # A mode with a gradient penalty reports it, and it is positive on a freshly built D.
    penalized = GAN_LOSSES.entry(gan_mode).meta["gp_weight"] > 0
    assert ("D_GP" in losses) == penalized
    if penalized:
        assert losses["D_GP"] > 0


def test_image_pool_feeds_d_older_fakes() -> None:
    model = tiny_model("--pool_size", "4", "--batch_size", "2")
    model.set_input(one_pair())
    for _ in range(6):
        model.train_step()
    assert len(model.fake_pool.images) == 4
    state = model.state_dict()["image_pool"]
    assert len(state["images"]) == 4
