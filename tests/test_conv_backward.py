"""models/networks/conv.py: the U-Net's convolutions take torch's native backward on tiny
feature maps. The oracle is torch's own convolution (default path): same outputs, gradients
equal to float32 rounding, and float64 gradcheck of the Function itself."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from models.networks import conv
from models.networks.conv import Conv2d, ConvTranspose2d, _NativeBackwardConv, use_native_backward


@pytest.fixture(autouse=True)
def rule_without_amx(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same rule on every machine: down convolutions native at 1x1 output only (a CPU
    without AMX); the AMX rule has its own tests below."""
    monkeypatch.setattr(conv, "DOWN_MAX_OUT_SIDE", 1)


def grads(module: nn.Module, x: torch.Tensor, g: torch.Tensor) -> list[torch.Tensor]:
    x = x.clone().requires_grad_()
    y = module(x)
    y.backward(g)
    return [y.detach(), x.grad, *(p.grad for p in module.parameters())]


def taken(module: nn.Module, x: torch.Tensor) -> bool:
    """Whether the forward went through the native-backward Function."""
    y = module(x.clone().requires_grad_())
    return type(y.grad_fn).__name__.startswith("_NativeBackwardConv")


@pytest.mark.parametrize("cls,cin,cout,side,native", [
    (ConvTranspose2d, 16, 8, 1, True), (ConvTranspose2d, 16, 8, 4, True), (ConvTranspose2d, 16, 8, 8, True),
    (ConvTranspose2d, 16, 8, 16, False), (Conv2d, 16, 8, 2, True), (Conv2d, 16, 8, 4, False),
])
def test_same_values_and_gradients_as_torchs_convolution(cls, cin, cout, side, native):
    torch.manual_seed(0)
    ours = cls(cin, cout, 4, 2, 1, bias=True)
    plain = (nn.ConvTranspose2d if cls is ConvTranspose2d else nn.Conv2d)(cin, cout, 4, 2, 1, bias=True)
    plain.load_state_dict(ours.state_dict())
    assert set(ours.state_dict()) == {"weight", "bias"}   # checkpoints interchange
    x = torch.randn(2, cin, side, side)
    g = torch.randn_like(plain(x))
    assert taken(ours, x) is native
    for a, b in zip(grads(ours, x, g), grads(plain, x, g)):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("amx,expected", [(True, 8), (False, 1)])
def test_the_down_rule_follows_the_cpus_amx_flag(monkeypatch, amx, expected):
    monkeypatch.setattr(conv, "DOWN_MAX_OUT_SIDE", None)
    monkeypatch.setattr(conv, "cpu_features", lambda: {"amx_tile": amx, "avx2": True})
    assert conv.down_max_out_side() == expected


@pytest.mark.parametrize("side,native", [(2, True), (4, True), (8, True), (16, True), (32, False)])
def test_with_amx_down_convolutions_up_to_8x8_output_are_native_and_equal(monkeypatch, side, native):
    """Input side 16 gives an 8x8 output (stride 2): the largest the AMX rule covers."""
    monkeypatch.setattr(conv, "DOWN_MAX_OUT_SIDE", 8)
    torch.manual_seed(4)
    ours = Conv2d(16, 8, 4, 2, 1, bias=True)
    plain = nn.Conv2d(16, 8, 4, 2, 1, bias=True)
    plain.load_state_dict(ours.state_dict())
    x = torch.randn(2, 16, side, side)
    g = torch.randn_like(plain(x))
    assert taken(ours, x) is native
    for a, b in zip(grads(ours, x, g), grads(plain, x, g)):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-5)


def test_the_function_passes_gradcheck_in_float64():
    torch.manual_seed(1)
    x = torch.randn(1, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    for transposed in (True, False):
        shape = (3, 2, 4, 4) if transposed else (2, 3, 4, 4)
        w = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
        b = torch.randn(2, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(
            lambda x, w, b: _NativeBackwardConv.apply(x, w, b, [2, 2], [1, 1], [1, 1], transposed, [0, 0], 1),
            (x, w, b))


def test_default_path_where_the_function_does_not_apply():
    layer = ConvTranspose2d(16, 8, 4, 2, 1)
    x = torch.randn(1, 16, 2, 2)
    assert taken(layer, x)
    with torch.no_grad():                      # inference, export
        assert layer(x).grad_fn is None
    assert not taken(layer.double(), x.double())   # only fp32
    layer.float()
    assert not taken(layer, x.transpose(2, 3))   # not contiguous NCHW
    assert use_native_backward(layer, False) == 1
    assert not taken(layer, x)


@pytest.mark.parametrize("cls,side", [(ConvTranspose2d, 4), (Conv2d, 2)])
def test_under_bf16_autocast_the_tiny_layers_run_in_fp32(cls, side):
    """Under CPU autocast the Function still applies, in fp32: the output is fp32 and equals
    the fp32 convolution of the (bf16) input; the gradients reaching the input and the fp32
    weight are the fp32 convolution's, not bf16-rounded ones (bf16 keeps 8 bits: they would
    differ by ~1e-2)."""
    torch.manual_seed(3)
    ours = cls(16, 8, 4, 2, 1, bias=True)
    plain = (nn.ConvTranspose2d if cls is ConvTranspose2d else nn.Conv2d)(16, 8, 4, 2, 1, bias=True)
    plain.load_state_dict(ours.state_dict())
    x = torch.randn(2, 16, side, side).bfloat16()     # what a bf16 layer before it hands on
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert taken(ours, x)
        x_ours = x.clone().requires_grad_()
        y = ours(x_ours)
    assert y.dtype == torch.float32
    g = torch.randn_like(y)
    y.backward(g)
    x_plain = x.float().requires_grad_()
    y_plain = plain(x_plain)                           # the oracle: torch's fp32 path, no autocast
    y_plain.backward(g)
    assert torch.allclose(y, y_plain, rtol=1e-5, atol=1e-5)
    assert x_ours.grad.dtype == torch.bfloat16         # back in the input's dtype, as autocast does
    assert torch.allclose(x_ours.grad.float(), x_plain.grad, rtol=1e-2, atol=1e-2)
    assert torch.allclose(ours.weight.grad, plain.weight.grad, rtol=1e-5, atol=1e-5)
    assert torch.allclose(ours.bias.grad, plain.bias.grad, rtol=1e-5, atol=1e-5)


def test_the_unet_uses_it_and_learns_the_same():
    from models.networks import build_generator
    torch.manual_seed(2)
    net = build_generator("unet_128", input_nc=3, output_nc=3, ngf=8, norm="batch", dropout=False)
    kinds = {type(m) for m in net.modules()}
    assert Conv2d in kinds and ConvTranspose2d in kinds
    x, target = torch.randn(2, 3, 128, 128), torch.rand(2, 3, 128, 128) * 2 - 1

    def step(enabled: bool) -> list[torch.Tensor]:
        model = build_generator("unet_128", input_nc=3, output_nc=3, ngf=8, norm="batch", dropout=False)
        model.load_state_dict(net.state_dict())
        assert use_native_backward(model, enabled) == 14   # 7 down, 7 up at 128 px
        (model(x) - target).abs().mean().backward()
        return [p.grad for p in model.parameters()]
    for a, b in zip(step(True), step(False)):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6)


def test_the_backward_leaves_onednn_as_it_found_it():
    layer = ConvTranspose2d(16, 8, 4, 2, 1)
    for state in (True, False):
        torch.backends.mkldnn.enabled = state
        try:
            layer(torch.randn(1, 16, 2, 2, requires_grad=True)).sum().backward()
            assert torch.backends.mkldnn.enabled is state
        finally:
            torch.backends.mkldnn.enabled = True
