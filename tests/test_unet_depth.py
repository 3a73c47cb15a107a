"""--netG unet --num_downs N: the U-Net's depth as a hyperparameter of its spec.

The presets are this family at fixed depths (unet_128 = 7, unet_256 = 8), so their weights and
keys are unchanged; the size multiple 2**N reaches the option checks, the data and translate.py
from the spec, and a checkpoint's spec brings its depth to inference.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

import train as train_script
from inference.generator import load_generator, translator_for
from models.networks import GENERATORS, build_generator, generator_spec
from options.configs import data_config
from options.inference import parse_inference_options
from options.parse import parse_options
from tests.test_ddp import write_pairs


def n_params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize("depth", [1, 2, 3, 4, 5, 6])
def test_every_depth_maps_its_size_multiple_to_the_same_size(depth: int) -> None:
    torch.manual_seed(0)
    net = build_generator("unet", input_nc=3, output_nc=2, ngf=4, norm="instance", num_downs=depth)
    side = 2 ** depth
    assert net.spec.size_multiple == side and len(net.levels()) == depth
    x = torch.randn(2, 3, side, 2 * side, requires_grad=True)
    y = net(x)
    assert y.shape == (2, 2, side, 2 * side) and y.abs().max() <= 1   # tanh output
    y.mean().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_depth_widths_follow_the_paper() -> None:
    # Level k (1 = outermost) downsamples to ngf * min(2**(k-1), 8) channels.
    net = build_generator("unet", ngf=2, norm="batch", num_downs=6)
    assert [level.down[0].out_channels for level in net.levels()] == [2, 4, 8, 16, 16, 16]
    # Dropout in the levels between the fifth and the innermost (exclusive), as in unet_256.
    assert [any(isinstance(m, torch.nn.Dropout) for m in level.up) for level in net.levels()] == \
        [False, False, False, False, True, False]


@pytest.mark.parametrize("preset, depth", [("unet_128", 7), ("unet_256", 8)])
def test_the_presets_are_the_family_at_their_depth(preset: str, depth: int) -> None:
    a = build_generator(preset, ngf=4, norm="batch")
    b = build_generator("unet", ngf=4, norm="batch", num_downs=depth)
    assert [(k, v.shape) for k, v in a.state_dict().items()] == [(k, v.shape) for k, v in b.state_dict().items()]
    assert a.spec.size_multiple == b.spec.size_multiple == 2 ** depth
    # A preset fixes its depth whatever --num_downs says (as --netD basic fixes 3 layers).
    assert GENERATORS.from_options({"netG": preset, "num_downs": 3}).num_downs == depth


def test_the_option_reaches_the_checks_and_the_data(capsys: pytest.CaptureFixture[str]) -> None:
    sizes = ["--preprocess", "resize_and_crop", "--crop_size", "40", "--load_size", "48"]
    opt = parse_options(["--netG", "unet", "--num_downs", "3", *sizes], is_train=True)
    assert generator_spec(opt).num_downs == 3 and data_config(opt).size_divisor == 8
    with pytest.raises(SystemExit):
        parse_options(["--netG", "unet", "--num_downs", "4", *sizes], is_train=True)
    err = capsys.readouterr().err
    assert "--crop_size 40 does not fit --netG unet, whose input side must be a multiple of 16" in err
    with pytest.raises(SystemExit):
        parse_options(["--netG", "unet", "--num_downs", "0"], is_train=True)
    assert "--num_downs: must be a positive integer, got 0" in capsys.readouterr().err


def test_a_trained_depth_comes_back_from_the_checkpoint(tmp_path: Path) -> None:
    pairs = write_pairs(tmp_path / "pairs", n=2, side=32)
    ck = tmp_path / "ck"
    assert train_script.main(["--dataroot", str(pairs), "--checkpoints_dir", str(ck), "--name", "d3", "--gpu_ids",
                              "-1", "--netG", "unet", "--num_downs", "3", "--ngf", "4", "--ndf", "4",
                              "--load_size", "32", "--crop_size", "32", "--preprocess", "none", "--num_threads", "0",
                              "--display_id", "0", "--no_html", "--amp", "none", "--max_steps", "1"]) == 0
    loaded = load_generator(parse_inference_options(["--name", "d3", "--checkpoints_dir", str(ck), "--gpu_ids", "-1",
                                                     "--eval"], "translate.py", "test"))
    assert loaded.spec.name == "unet" and loaded.spec.num_downs == 3
    assert translator_for(loaded).size_multiple == 8
    with pytest.raises(Exception, match="trained with --num_downs 3, you asked for --num_downs 4"):
        load_generator(parse_inference_options(["--name", "d3", "--checkpoints_dir", str(ck), "--gpu_ids", "-1",
                                                "--num_downs", "4"], "translate.py", "test"))
