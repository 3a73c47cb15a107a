"""LayerInspector: captures activations and gradients of named layers and leaves no hook behind."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import nn

from reporting.hooks import LayerInspector, resolve_layers


class TinyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv2d(3, 6, 3, stride=2, padding=1), nn.ReLU())
        self.decoder = nn.Sequential(nn.Conv2d(6, 2, 1), nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))

    def named_stages(self) -> dict[str, nn.Module]:
        return {"down1": self.encoder, "up1": self.decoder}


def no_hooks_left(net: nn.Module) -> bool:
    return all(not m._forward_hooks and not m._backward_hooks for m in net.modules())


def test_captures_shapes_statistics_and_gradients() -> None:
    torch.manual_seed(0)
    net = TinyNet()
    x = torch.randn(2, 3, 16, 16, requires_grad=True)  # else torch warns that down1 gets no input grad
    with LayerInspector(resolve_layers(net.named_stages(), net, ["down1", "up1"])) as inspector:
        net(x).square().mean().backward()
        net(x[:1])  # a second call pools into the statistics; shape is the last call's
    stats = inspector.stats()
    assert no_hooks_left(net)

    assert stats["down1"]["shape"] == [1, 6, 8, 8] and stats["down1"]["calls"] == 2
    relu_out = torch.cat([net.encoder(x), net.encoder(x[:1])])
    assert stats["down1"]["mean"] == pytest.approx(relu_out.mean().item(), rel=1e-5)
    assert stats["down1"]["std"] == pytest.approx(relu_out.std(unbiased=False).item(), rel=1e-4)
    assert stats["down1"]["zero_fraction"] == pytest.approx((relu_out == 0).float().mean().item())
    assert stats["down1"]["min"] == 0.0 and stats["down1"]["max"] == pytest.approx(relu_out.max().item())
    assert -1 <= stats["up1"]["min"] <= stats["up1"]["max"] <= 1

    out = net(x)
    expected_grad = torch.autograd.grad(out.square().mean(), out)[0].norm().item()
    assert stats["up1"]["grad_norm"] == pytest.approx(expected_grad, rel=1e-5)
    assert stats["down1"]["grad_norm"] > 0


def test_hooks_are_removed_even_when_the_body_raises() -> None:
    net = TinyNet()
    with pytest.raises(RuntimeError, match="boom"):
        with LayerInspector({"a": net.encoder, "b": net.decoder[0]}):
            assert not no_hooks_left(net)
            raise RuntimeError("boom")
    assert no_hooks_left(net)


def test_forward_only_inspection_registers_no_backward_hook() -> None:
    net = TinyNet()
    with LayerInspector({"down1": net.encoder}, capture_grads=False):
        assert not net.encoder._backward_hooks
        with torch.no_grad():
            net(torch.randn(1, 3, 8, 8))
    assert no_hooks_left(net)


def test_feature_maps_are_written_as_one_png_per_layer(tmp_path: Path) -> None:
    net = TinyNet()
    with LayerInspector(net.named_stages(), capture_grads=False) as inspector:
        with torch.no_grad():
            net(torch.randn(2, 3, 16, 16))
    paths = inspector.save_feature_maps(tmp_path / "maps", max_channels=4)
    assert set(paths) == {"down1", "up1"}
    with Image.open(paths["down1"]) as image:
        # 4 channels of an 8x8 map, enlarged to 32x32 tiles, 1 px padding around each tile.
        assert image.size == (4 * 33 + 1, 33 + 1)
    with Image.open(paths["up1"]) as image:
        assert image.size == (2 * 33 + 1, 33 + 1)  # only 2 channels exist


def test_resolve_layers_accepts_stage_names_and_module_paths() -> None:
    net = TinyNet()
    stages = net.named_stages()
    layers = resolve_layers(stages, net, ["up1", " encoder.0", ""])
    assert layers == {"up1": net.decoder, "encoder.0": net.encoder[0]}
    with pytest.raises(ValueError, match="'mid3'.*down1, up1"):
        resolve_layers(stages, net, ["mid3"])
