"""Our BatchNorm2d: equal to nn.BatchNorm2d in training, and its three eval modes."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from models.batchnorm import BN_EVAL_MODES, BatchNorm2d, set_bn_eval_mode
from models.precise_bn import recompute_bn_stats
from util.registry import UnknownNameError

C = 3


def batch(seed: int, n: int = 4, side: int = 5, offset: float = 0.0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, C, side, side, generator=gen) * torch.tensor([1.0, 3.0, 0.2]).view(1, C, 1, 1)
    return x + offset + torch.tensor([0.5, -2.0, 4.0]).view(1, C, 1, 1)


def twin_layers(momentum: float | None = 0.1, affine: bool = True) -> tuple[BatchNorm2d, nn.BatchNorm2d]:
    ours, ref = BatchNorm2d(C, momentum=momentum, affine=affine), nn.BatchNorm2d(C, momentum=momentum, affine=affine)
    if affine:
        with torch.no_grad():
            ours.weight.copy_(torch.tensor([1.3, -0.7, 0.9]))
            ours.bias.copy_(torch.tensor([0.2, 0.0, -1.0]))
    ref.load_state_dict(ours.state_dict())
    return ours, ref


def close(a: torch.Tensor, b: torch.Tensor, tol: float = 1e-5) -> bool:
    return torch.allclose(a, b, rtol=tol, atol=tol)


@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("affine", [True, False])
def test_training_mode_equals_native(momentum: float | None, affine: bool) -> None:
    ours, ref = twin_layers(momentum, affine)
    for step in range(4):
        x = batch(step, n=2 + step, offset=3.0 * step)
        g = torch.randn(x.shape, generator=torch.Generator().manual_seed(50 + step))
        x_ours, x_ref = x.clone().requires_grad_(), x.clone().requires_grad_()
        ours.zero_grad()
        ref.zero_grad()
        y_ours, y_ref = ours(x_ours), ref(x_ref)
        (y_ours * g).sum().backward()
        (y_ref * g).sum().backward()
        assert close(y_ours, y_ref)
        assert close(x_ours.grad, x_ref.grad)
        if affine:
            assert close(ours.weight.grad, ref.weight.grad, 1e-4)
            assert close(ours.bias.grad, ref.bias.grad, 1e-4)
        assert close(ours.running_mean, ref.running_mean)
        assert close(ours.running_var, ref.running_var)
        assert torch.equal(ours.num_batches_tracked, ref.num_batches_tracked)


def test_double_backward_equals_native() -> None:
    """A gradient penalty (WGAN-GP) differentiates D's input gradient once more."""
    results = []
    for layer in twin_layers():
        layer.double()
        x = batch(7).double().requires_grad_()
        (grad_x,) = torch.autograd.grad((layer(x) ** 3).sum(), x, create_graph=True)
        (grad_x ** 2).sum().backward()
        results.append((grad_x.detach(), x.grad, layer.weight.grad))
    for ours, ref in zip(*results):
        assert torch.allclose(ours, ref, rtol=1e-9, atol=1e-9)


def test_running_eval_mode_equals_native_eval() -> None:
    ours, ref = twin_layers()
    for step in range(3):
        ours(batch(step))
        ref(batch(step))
    ours.eval()
    ref.eval()
    x = batch(10)
    assert close(ours(x), ref(x))


def test_batch_eval_mode_uses_batch_statistics_and_keeps_running_ones() -> None:
    ours, _ = twin_layers()
    ours(batch(0))  # one training step so the running stats are not the initial ones
    frozen = {k: v.clone() for k, v in ours.state_dict().items()}
    x = batch(1, offset=5.0)
    ours.train()
    with torch.no_grad():
        expected = ours(x)
    ours.load_state_dict(frozen)
    ours.eval()
    ours.eval_mode = "batch"
    assert torch.equal(ours(x), expected)
    for key, value in ours.state_dict().items():
        assert torch.equal(value, frozen[key]), f"{key} changed in eval mode"


def test_without_running_stats_every_mode_uses_the_batch() -> None:
    ours = BatchNorm2d(C, track_running_stats=False)
    ref = nn.BatchNorm2d(C, track_running_stats=False)
    assert list(ours.state_dict()) == list(ref.state_dict()) == ["weight", "bias"]
    ours.eval()
    ref.eval()
    x = batch(3)
    assert close(ours(x), ref(x))


def test_precise_mode_needs_recomputed_statistics() -> None:
    layer = BatchNorm2d(C, eval_mode="precise").eval()
    with pytest.raises(RuntimeError, match="recompute_bn_stats"):
        layer(batch(0))


def test_precise_statistics_are_the_exact_pooled_statistics() -> None:
    """Batches with different means: averaging per-batch variances would miss their spread."""
    torch.manual_seed(0)
    layer = BatchNorm2d(C)
    with torch.no_grad():
        layer.weight.fill_(2.0)
    layer(batch(99, offset=50.0))  # some training history, which must not survive
    batches = [batch(i, n=2, offset=float(i)) for i in range(6)]
    layer.eval()
    weights_before = layer.weight.clone()
    counter_before = layer.num_batches_tracked.clone()

    assert recompute_bn_stats(layer, batches, num_batches=5) == 1
    used = torch.cat(batches[:5])
    assert torch.allclose(layer.running_mean, used.mean(dim=(0, 2, 3)), rtol=1e-6, atol=1e-6)
    assert torch.allclose(layer.running_var, used.var(dim=(0, 2, 3)), rtol=1e-5, atol=1e-6)
    assert torch.equal(layer.weight, weights_before)
    assert torch.equal(layer.num_batches_tracked, counter_before)

    layer.eval_mode = "precise"
    x = batch(20)
    expected = (x - used.mean(dim=(0, 2, 3)).view(1, C, 1, 1)) / torch.sqrt(
        used.var(dim=(0, 2, 3)).view(1, C, 1, 1) + layer.eps) * 2.0
    assert close(layer(x), expected)

    layer.train()
    layer(batch(21))  # a training step invalidates the precise statistics
    layer.eval()
    with pytest.raises(RuntimeError):
        layer(x)


def test_precise_statistics_recover_a_known_distribution() -> None:
    gen = torch.Generator().manual_seed(3)
    mean, std = torch.tensor([3.0, -1.0, 0.0]), torch.tensor([2.0, 0.5, 1.0])
    batches = (torch.randn(8, C, 8, 8, generator=gen) * std.view(1, C, 1, 1) + mean.view(1, C, 1, 1)
               for _ in range(50))
    layer = BatchNorm2d(C).eval()
    # A network around the layer: the default forward is the model itself.
    model = nn.Sequential(nn.Identity(), layer)
    assert recompute_bn_stats(model, batches) == 1
    values_per_channel = 50 * 8 * 8 * 8
    # Within 4 standard errors of the true mean; the sample std's relative error is ~1/sqrt(2n).
    assert ((layer.running_mean - mean).abs() < 4 * std / values_per_channel ** 0.5).all()
    assert torch.allclose(layer.running_var.sqrt(), std, rtol=4 / (2 * values_per_channel) ** 0.5)


def test_recompute_uses_the_given_forward_and_rejects_empty_input() -> None:
    layer = BatchNorm2d(C)
    items = [{"A": batch(i)} for i in range(3)]
    assert recompute_bn_stats(layer, items, forward=lambda item: layer(item["A"])) == 1
    with pytest.raises(ValueError, match="empty"):
        recompute_bn_stats(layer, [])


def test_set_bn_eval_mode_counts_layers_and_rejects_unknown_modes() -> None:
    net = nn.Sequential(BatchNorm2d(C), nn.ReLU(), nn.Sequential(BatchNorm2d(C)), nn.BatchNorm2d(C))
    assert set_bn_eval_mode(net, "batch") == 2
    assert net[0].eval_mode == net[2][0].eval_mode == "batch"
    with pytest.raises(UnknownNameError, match="running, batch, precise"):
        set_bn_eval_mode(net, "train")
    assert set(BN_EVAL_MODES.names()) == {"running", "batch", "precise"}
    assert all(entry.help for entry in BN_EVAL_MODES)


def test_state_dict_interchanges_with_native_both_ways() -> None:
    ours, ref = twin_layers()
    for step in range(2):
        ours(batch(step))
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in ref.state_dict().items()}
    native = nn.BatchNorm2d(C)
    native.load_state_dict(ours.state_dict(), strict=True)
    back = BatchNorm2d(C)
    back.load_state_dict(native.state_dict(), strict=True)
    for key, value in ours.state_dict().items():
        assert torch.equal(native.state_dict()[key], value)
        assert torch.equal(back.state_dict()[key], value)
    native.eval()
    back.eval()
    assert close(back(batch(5)), native(batch(5)))


@pytest.mark.parametrize("shape, message", [((2, C, 4), "(N, C, H, W)"), ((2, C + 1, 4, 4), "channels"),
                                            ((1, C, 1, 1), "more than 1")])
def test_bad_input_raises_a_clear_error(shape: tuple[int, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        BatchNorm2d(C)(torch.zeros(shape))


def test_training_statistics_at_large_channel_means_match_float64() -> None:
    """Channel means 1e3 standard deviations away from zero: float32 holds x only to half an
    ulp of 1e3 (3e-5), so y may be off by a few of those over the std, and no more."""
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(4, 3, 8, 8, generator=gen) * 0.5 + 1e3
    ours = BatchNorm2d(3)
    exact = BatchNorm2d(3).double()
    y = ours(x)
    y64 = exact(x.double())
    bound = 4 * torch.finfo(torch.float32).eps * 1e3 / 0.5
    assert (y.double() - y64).abs().max().item() < bound
    assert torch.allclose(ours.running_mean.double(), exact.running_mean, rtol=1e-7, atol=0)
    assert torch.allclose(ours.running_var.double(), exact.running_var, rtol=1e-3)
