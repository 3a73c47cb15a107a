"""models/networks/conv.py: the U-Net's convolutions take torch's native kernels in training
on tiny feature maps. The oracle is torch's own convolution (default path): same outputs, gradients
equal to float32 rounding, and float64 gradcheck of the Function itself."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from models.networks import conv
from models.networks.conv import (Conv2d, ConvTranspose2d, _NativeKernelConv, set_down_max_out_side,
                                  use_native_backward)


def layer(cls: type, *args, down_max: int = 1, **kwargs) -> nn.Module:
    """The same rule on every machine: down convolutions native at 1x1 output only (a CPU
    without AMX) unless ``down_max`` says otherwise; the AMX rule has its own tests below."""
    if cls is Conv2d:
        kwargs["native_max_out_side"] = down_max
    return cls(*args, **kwargs)


def grads(module: nn.Module, x: torch.Tensor, g: torch.Tensor) -> list[torch.Tensor]:
    x = x.clone().requires_grad_()
    y = module(x)
    y.backward(g)
    return [y.detach(), x.grad, *(p.grad for p in module.parameters())]


def taken(module: nn.Module, x: torch.Tensor) -> bool:
    """Whether the forward went through the native-backward Function."""
    y = module(x.clone().requires_grad_())
    return type(y.grad_fn).__name__.startswith("_NativeKernelConv")


@pytest.mark.parametrize("batch", [1, 2])   # the weight gradient takes views at batch 1, copies above
@pytest.mark.parametrize("cls,cin,cout,side,native", [
    (ConvTranspose2d, 16, 8, 1, True), (ConvTranspose2d, 16, 8, 4, True), (ConvTranspose2d, 16, 8, 8, True),
    (ConvTranspose2d, 16, 8, 16, False), (Conv2d, 16, 8, 2, True), (Conv2d, 16, 8, 4, False),
])
def test_same_values_and_gradients_as_torchs_convolution(cls, cin, cout, side, native, batch):
    torch.manual_seed(0)
    ours = layer(cls, cin, cout, 4, 2, 1, bias=True)
    plain = (nn.ConvTranspose2d if cls is ConvTranspose2d else nn.Conv2d)(cin, cout, 4, 2, 1, bias=True)
    plain.load_state_dict(ours.state_dict())
    assert set(ours.state_dict()) == {"weight", "bias"}   # checkpoints interchange
    x = torch.randn(batch, cin, side, side)
    g = torch.randn_like(plain(x))
    assert taken(ours, x) is native
    for a, b in zip(grads(ours, x, g), grads(plain, x, g)):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("amx,expected", [(True, 8), (False, 1)])
def test_the_down_rule_follows_the_cpus_amx_flag_and_is_fixed_at_construction(monkeypatch, amx, expected):
    monkeypatch.setattr(conv, "cpu_features", lambda: {"amx_tile": amx, "avx2": True})
    assert conv.default_down_max_out_side() == expected
    built = Conv2d(16, 8, 4, 2, 1)
    assert built.native_max_out_side == expected
    assert Conv2d(16, 8, 4, 2, 1, native_max_out_side=4).native_max_out_side == 4   # passed in: kept
    monkeypatch.setattr(conv, "cpu_features", lambda: {"amx_tile": not amx, "avx2": True})
    assert built.native_max_out_side == expected   # decided once, not read per call
    assert set_down_max_out_side(nn.Sequential(built, Conv2d(8, 8, 3)), 2) == 2 and built.native_max_out_side == 2


@pytest.mark.parametrize("side,native", [(2, True), (4, True), (8, True), (16, True), (32, False)])
def test_with_amx_down_convolutions_up_to_8x8_output_are_native_and_equal(side, native):
    """Input side 16 gives an 8x8 output (stride 2): the largest the AMX rule covers."""
    torch.manual_seed(4)
    ours = layer(Conv2d, 16, 8, 4, 2, 1, bias=True, down_max=8)
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
            lambda x, w, b: _NativeKernelConv.apply(x, w, b, [2, 2], [1, 1], transposed, [0, 0]),
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


# bf16 keeps 8 significant bits: rounding a value to bf16 moves it by at most 2**-8 of itself.
# The 1% on top covers float32 differences between two fp32 convolution kernels.
BF16_ROUNDING = 2**-8 * 1.01


@pytest.mark.parametrize("cls,side", [(ConvTranspose2d, 4), (Conv2d, 2)])
def test_under_bf16_autocast_the_tiny_layers_run_in_fp32(cls, side):
    """Under CPU autocast the Function still applies, in fp32: the output is fp32 and equals
    the fp32 convolution of the (bf16) input; the gradient reaching the input is the fp32
    convolution's rounded once to bf16, and the fp32 weight's gradient is the fp32 one. The
    bf16 path (autocast's own convolution, bf16 weights and gradients) misses each of these
    bounds: its input gradient is off by up to a third of itself, its weight gradient by 1e-2."""
    torch.manual_seed(3)
    ours = layer(cls, 16, 8, 4, 2, 1, bias=True)
    plain = (nn.ConvTranspose2d if cls is ConvTranspose2d else nn.Conv2d)(16, 8, 4, 2, 1, bias=True)
    plain.load_state_dict(ours.state_dict())
    x = torch.randn(2, 16, side, side).bfloat16()     # what a bf16 layer before it hands on
    with torch.autocast("cpu", dtype=torch.bfloat16):
        x_ours = x.clone().requires_grad_()
        y = ours(x_ours)
    g = torch.randn(y.shape)
    y.float().backward(g)
    x_plain = x.float().requires_grad_()
    y_plain = plain(x_plain)                           # the oracle: torch's fp32 path, no autocast
    y_plain.backward(g)
    # Back in the input's dtype, as autocast does: one rounding of the fp32 gradient, no more.
    assert x_ours.grad.dtype == torch.bfloat16
    error = (x_ours.grad.float() - x_plain.grad).abs()
    assert (error <= BF16_ROUNDING * x_plain.grad.abs()).all(), (error / x_plain.grad.abs()).max()
    assert torch.allclose(y.float(), y_plain, rtol=1e-5, atol=1e-5)
    assert torch.allclose(ours.weight.grad, plain.weight.grad, rtol=1e-5, atol=1e-5)
    assert torch.allclose(ours.bias.grad, plain.bias.grad, rtol=1e-5, atol=1e-5)
    assert y.dtype == torch.float32
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert taken(ours, x)


def test_the_unet_uses_it_and_learns_the_same():
    from models.networks import build_generator
    torch.manual_seed(2)
    net = build_generator("unet_128", input_nc=3, output_nc=3, ngf=8, norm="batch", dropout=False)
    set_down_max_out_side(net, 1)
    kinds = {type(m) for m in net.modules()}
    assert Conv2d in kinds and ConvTranspose2d in kinds
    x, target = torch.randn(2, 3, 128, 128), torch.rand(2, 3, 128, 128) * 2 - 1

    def step(enabled: bool) -> list[torch.Tensor]:
        model = build_generator("unet_128", input_nc=3, output_nc=3, ngf=8, norm="batch", dropout=False)
        model.load_state_dict(net.state_dict())
        set_down_max_out_side(model, 1)
        assert use_native_backward(model, enabled) == 14   # 7 down, 7 up at 128 px
        (model(x) - target).abs().mean().backward()
        return [p.grad for p in model.parameters()]
    for a, b in zip(step(True), step(False)):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6)


def test_the_native_path_never_touches_the_process_wide_onednn_switch(monkeypatch):
    """The kernel is chosen per call: threads serving requests see no switch flip."""
    def refuse(_: bool) -> None:
        raise AssertionError("the process-wide oneDNN switch was set")
    monkeypatch.setattr(torch._C, "_set_mkldnn_enabled", refuse)
    for ours in (layer(ConvTranspose2d, 16, 8, 4, 2, 1), layer(Conv2d, 16, 8, 4, 2, 1)):
        x = torch.randn(1, 16, 2, 2, requires_grad=True)
        assert taken(ours, x)
        ours(x).sum().backward()
    assert torch.backends.mkldnn.enabled


def test_output_padding_and_undilated_rule():
    """A transposed layer with output padding still matches torch; a dilated one keeps the
    default path (the native Function covers dilation 1, one group)."""
    torch.manual_seed(5)
    ours = layer(ConvTranspose2d, 6, 4, 3, 2, 1, output_padding=1)
    plain = nn.ConvTranspose2d(6, 4, 3, 2, 1, output_padding=1)
    plain.load_state_dict(ours.state_dict())
    x = torch.randn(2, 6, 3, 3)
    g = torch.randn_like(plain(x))
    assert taken(ours, x)
    for a, b in zip(grads(ours, x, g), grads(plain, x, g)):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-5)
    assert not taken(layer(ConvTranspose2d, 6, 4, 3, 2, 1, dilation=2), x)
    assert not taken(layer(Conv2d, 6, 4, 3, 2, 1, groups=2), torch.randn(2, 6, 2, 2))


def test_a_transposed_layer_on_a_non_square_input_matches_torch():
    """The transposed forward (one matrix product and a fold) sizes height and width apart."""
    torch.manual_seed(6)
    ours = layer(ConvTranspose2d, 5, 3, (3, 4), 2, (1, 0), output_padding=(1, 0), bias=True)
    plain = nn.ConvTranspose2d(5, 3, (3, 4), 2, (1, 0), output_padding=(1, 0), bias=True)
    plain.load_state_dict(ours.state_dict())
    x = torch.randn(2, 5, 3, 6)
    g = torch.randn_like(plain(x))
    assert taken(ours, x) and g.shape == (2, 3, 6, 14)
    for a, b in zip(grads(ours, x, g), grads(plain, x, g)):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-5)


def test_the_onednn_layers_never_take_the_native_kernels_and_the_transposed_side_is_per_layer():
    """onednn_conv2d / onednn_conv_transpose2d (ResNet, discriminators, resize upsamplers) keep
    oneDNN even at 1x1; a transposed layer's own ``native_max_in_side`` replaces the default."""
    x = torch.randn(1, 16, 1, 1)
    assert not taken(conv.onednn_conv2d(16, 8, 1), x)
    assert not taken(conv.onednn_conv_transpose2d(16, 8, 4, 2, 1), x)
    assert taken(ConvTranspose2d(16, 8, 4, 2, 1), x)                    # the default: input side <= 8
    wide = torch.randn(1, 16, 12, 12)
    assert not taken(ConvTranspose2d(16, 8, 4, 2, 1), wide)
    assert taken(ConvTranspose2d(16, 8, 4, 2, 1, native_max_in_side=16), wide)
    # The benchmarks' setter: every transposed layer of a module, and only those.
    both = nn.Sequential(ConvTranspose2d(16, 8, 4, 2, 1), Conv2d(8, 8, 3), ConvTranspose2d(8, 8, 4, 2, 1))
    assert conv.set_transposed_max_in_side(both, 16) == 2
    assert taken(both[0], wide) and both[1].native_max_out_side == conv.default_down_max_out_side()
