"""models/networks/layout.py: channels_last around oneDNN under CPU bf16 autocast. Oracles:
torch.cat and the same networks run with the rule switched off (NCHW), float64 gradcheck."""
from __future__ import annotations

import pytest
import torch

from benchmarks.bf16_layouts import layout_rule_off
from models.batchnorm import BatchNorm2d
from models.networks import conv
from models.networks.layout import _CatKeepingLayouts, cat_channels, is_channels_last, onednn_input
from models.networks.local_enhancer import GlobalGenerator
from models.networks.patchgan import NLayerDiscriminator, PixelDiscriminator
from models.networks.resnet import ResnetBlock, ResnetGenerator
from models.networks.unet import UnetGenerator
from models.norms import norm_spec

CL = torch.channels_last


def bf16():
    return torch.autocast("cpu", dtype=torch.bfloat16)


def test_onednn_input_is_channels_last_only_under_cpu_bf16_autocast():
    x = torch.randn(1, 8, 4, 4)
    assert onednn_input(x) is x                       # fp32: unchanged
    with bf16():
        y = onednn_input(x)
        assert is_channels_last(y) and torch.equal(y, x)
        assert onednn_input(y) is y                   # already so: no copy
        v = torch.randn(8, 4, 4)
        assert onednn_input(v) is v                   # not a batch of images
    with torch.autocast("cpu", dtype=torch.float16):
        assert onednn_input(x) is x


def test_cat_channels_equals_torch_cat_and_gives_gradients_in_each_inputs_layout():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 5, 5).contiguous(memory_format=CL).requires_grad_()
    y = torch.randn(2, 4, 5, 5).requires_grad_()      # NCHW
    g = torch.randn(2, 7, 5, 5)
    out = cat_channels(x, y)
    assert torch.equal(out, torch.cat([x, y], 1))
    gx, gy = torch.autograd.grad(out, (x, y), g)
    assert torch.equal(gx, g[:, :3]) and torch.equal(gy, g[:, 3:])
    assert is_channels_last(gx) and gy.is_contiguous()
    # a channel slice of an NHWC gradient, what torch.cat would hand back, is in neither layout
    plain = torch.autograd.grad(torch.cat([x, y], 1), x, g.contiguous(memory_format=CL))[0]
    assert not plain.is_contiguous() and not plain.is_contiguous(memory_format=CL)


def test_nchw_inputs_take_torch_cat_itself():
    x, y = torch.randn(2, 3, 4, 4, requires_grad=True), torch.randn(2, 1, 4, 4, requires_grad=True)
    assert type(cat_channels(x, y).grad_fn).__name__ == "CatBackward0"


def test_cat_keeps_a_second_derivative():
    torch.manual_seed(1)
    x = torch.randn(1, 2, 3, 3, dtype=torch.float64).contiguous(memory_format=CL).requires_grad_()
    y = torch.randn(1, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda a, b: _CatKeepingLayouts.apply(a, b) ** 2, (x, y))


def step_grads(net: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    net.zero_grad(set_to_none=True)
    with bf16():
        out = net(x)
    out.float().square().mean().backward()
    return out.detach().float(), [p.grad.clone() for p in net.parameters()]


def close_in_bf16(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Two bf16 computations through different kernels: equal up to bf16's rounding, which
    compounds through the layers; compared by the size of the difference against the tensor's."""
    return bool((a - b).norm() <= 0.05 * b.norm() + 1e-6)


def mean_removed_biases(net: torch.nn.Module) -> dict[int, torch.nn.Parameter]:
    """The biases of convolutions whose output goes straight into a norm layer that subtracts
    each channel's mean (instance norm, batch norm in training), by id, with their layer's
    weight. Their exact gradient is zero: what either layout computes for them is rounding
    noise, which has no size of its own to be compared against."""
    found = {}
    for seq in net.modules():
        if isinstance(seq, torch.nn.Sequential):
            layers = list(seq)
            for layer, after in zip(layers, layers[1:]):
                if (isinstance(layer, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)) and layer.bias is not None
                        and isinstance(after, (torch.nn.InstanceNorm2d, torch.nn.BatchNorm2d, BatchNorm2d))):
                    found[id(layer.bias)] = layer.weight
    return found


def gradients_agree(net: torch.nn.Module, grads: list[torch.Tensor], ref_grads: list[torch.Tensor]) -> bool:
    """Every gradient within bf16's rounding of the NCHW one; the mean-removed biases' (exactly
    zero) within 1e-3 of their layer's weight gradient in both runs."""
    params = list(net.parameters())
    by_id = {id(p): (g, r) for p, g, r in zip(params, grads, ref_grads)}
    zero = mean_removed_biases(net)
    for p, g, r in zip(params, grads, ref_grads):
        if id(p) in zero:
            scale = by_id[id(zero[id(p)])][1].norm()
            if not (g.norm() <= 1e-3 * scale and r.norm() <= 1e-3 * scale):
                return False
        elif not close_in_bf16(g, r):
            return False
    return True


@pytest.mark.parametrize("build,in_nc,side", [
    (lambda: UnetGenerator(3, 3, 5, 8, norm_spec("batch"), dropout=False), 3, 32),
    (lambda: NLayerDiscriminator(6, 8, 3, norm_spec("batch")), 6, 64),
    (lambda: ResnetGenerator(3, 3, 2, 8, norm_spec("instance"), upsample="deconv"), 3, 32),
    (lambda: ResnetGenerator(3, 3, 1, 8, norm_spec("batch"), upsample="bilinear"), 3, 16),
])
def test_networks_under_bf16_compute_what_they_compute_in_nchw(build, in_nc, side):
    torch.manual_seed(2)
    net = build()
    x = torch.randn(2, in_nc, side, side)
    layouts = []   # (layer, output channels_last?) for every oneDNN convolution with > 1 channel out
    hooks = [m.register_forward_hook(lambda m, i, o: layouts.append(is_channels_last(o)))
             for m in net.modules() if isinstance(m, (conv.Conv2d, conv.ConvTranspose2d)) and m.out_channels > 1]
    out, grads = step_grads(net, x)
    for h in hooks:
        h.remove()
    assert sum(layouts) >= 2   # the rule is on: oneDNN layers hand on NHWC
    with layout_rule_off():
        ref_out, ref_grads = step_grads(net, x)
    assert close_in_bf16(out, ref_out)
    assert gradients_agree(net, grads, ref_grads)


@pytest.mark.parametrize("build,side", [
    (lambda: NLayerDiscriminator(6, 4, 3, norm_spec("batch")), 32),   # 16, 8, 4, 3, 2 px: native on AMX
    (lambda: PixelDiscriminator(6, 4, norm_spec("batch")), 1),         # 1 px: native on every CPU
])
def test_the_discriminators_convolutions_never_take_the_native_kernels(build, side):
    """A gradient penalty differentiates D's output twice; the native Function has no second
    derivative, so D keeps oneDNN even on maps the generator's rule would send native."""
    torch.manual_seed(3)
    d = build()
    x = torch.randn(2, 6, side, side, requires_grad=True)
    out = d(x)
    names = set()
    stack = [out.grad_fn]
    while stack:
        fn = stack.pop()
        if fn is not None and type(fn).__name__ not in names:
            names.add(type(fn).__name__)
            stack.extend(f for f, _ in fn.next_functions)
    assert not any(n.startswith("_NativeKernelConv") for n in names)
    (g,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    g.square().sum().backward()                            # the penalty's second derivative
    weights = [m.weight for m in d.modules() if isinstance(m, conv.Conv2d)]
    assert all(w.grad is not None and w.grad.abs().sum() > 0 for w in weights)


def test_the_global_generators_residual_blocks_stay_nchw_under_bf16():
    """Their weights dwarf their maps (1024x1024x3x3 at the paper's width): there a
    channels_last input costs the step more than it saves, so they keep torch's layer."""
    torch.manual_seed(4)
    g = GlobalGenerator(input_nc=3, output_nc=3, ngf=4, norm=norm_spec("batch"), n_downsample_global=2,
                        n_blocks_global=2)
    seen = []
    for block in (m for m in g.modules() if isinstance(m, ResnetBlock)):
        for layer in block.modules():
            if isinstance(layer, torch.nn.Conv2d):
                layer.register_forward_pre_hook(lambda m, args: seen.append(is_channels_last(args[0])))
    with bf16():
        g(torch.randn(1, 3, 16, 16))
    assert len(seen) == 4 and not any(seen)
