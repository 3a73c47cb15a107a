"""--l1_downsample K: the L1 term on K x K block averages, for pairs misaligned by a few pixels."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from engine.distributed import Runtime
from models import create_model
from models.l1_terms import l1_term
from options.parse import parse_options


def grid(size: int = 32) -> torch.Tensor:
    """Thin (1 px) lines every 8 px on a dark ground: detail that a 2 px shift moves off itself."""
    image = -torch.ones(1, 1, size, size)
    image[..., :, 4::8] = 1
    image[..., 4::8, :] = 1
    return image


def gradient_energy(image: torch.Tensor) -> float:
    return float((image.diff(dim=-1) ** 2).mean() + (image.diff(dim=-2) ** 2).mean())


def learn_on_shifted_targets(downsample: int, steps: int = 60) -> torch.Tensor:
    """A small residual network (identity at the start, as a U-Net's skips carry the input's
    detail) trained to map the grid to itself, each target shifted by up to 2 px."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 1, 3, padding=1))
    nn.init.zeros_(net[2].weight)
    nn.init.zeros_(net[2].bias)
    optimizer = torch.optim.Adam(net.parameters(), lr=0.01)
    a, shifts = grid(), torch.Generator().manual_seed(1)
    for _ in range(steps):
        dy, dx = torch.randint(-2, 3, (2,), generator=shifts).tolist()
        loss = l1_term(a + net(a), torch.roll(a, (dy, dx), (2, 3)), downsample)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        return a + net(a)


def test_downsampled_l1_keeps_detail_that_plain_l1_erases() -> None:
    target = gradient_energy(grid())
    plain, pooled = (gradient_energy(learn_on_shifted_targets(k)) for k in (1, 4))
    # Plain L1 learns the per-pixel median of the shifts: the thin lines fade (measured 0.08 of
    # the target's 1.81); on 4x4 averages they stay (0.88).
    assert plain < 0.2 * target
    assert pooled > 0.4 * target and pooled > 5 * plain


def test_the_term_is_l1_of_block_means() -> None:
    generator = torch.Generator().manual_seed(0)
    fake, real = (torch.rand(2, 3, 8, 10, generator=generator) for _ in range(2))

    def block_means(x: torch.Tensor) -> np.ndarray:   # 4 x 4 blocks; the last columns' blocks are 4 x 2
        a = x.numpy()
        return np.stack([[a[..., i:i + 4, j:j + 4].mean(axis=(-1, -2)) for j in range(0, 10, 4)]
                         for i in range(0, 8, 4)], axis=-1)
    oracle = np.abs(block_means(fake) - block_means(real)).mean()
    assert abs(float(l1_term(fake, real, 4)) - oracle) < 1e-6
    assert torch.equal(l1_term(fake, real, 1), (fake - real).abs().mean())


def test_pix2pix_takes_its_l1_term_downsampled() -> None:
    argv = ["--dataroot", "unused", "--gpu_ids", "-1", "--netG", "resnet_6blocks", "--ngf", "4", "--ndf", "4",
            "--display_id", "0", "--amp", "none", "--no_dropout", "--l1_downsample", "4"]
    torch.manual_seed(0)
    model = create_model(parse_options(argv, is_train=True), Runtime(torch.device("cpu")))
    a = torch.rand(1, 3, 32, 32) * 2 - 1
    model.set_input({"A": a, "B": -a, "A_paths": ["x"], "B_paths": ["x"]})
    model.forward()
    losses = model.backward_G()
    expected = l1_term(model.fake_B.detach(), -a, 4) * 100.0
    assert torch.allclose(losses["G_L1"].detach(), expected)
    assert not torch.allclose(expected, l1_term(model.fake_B.detach(), -a, 1) * 100.0)
