"""A reference generator file's architecture comes from the file: the flags not typed are read
from its weights, a typed flag that contradicts them is one line, and --model_suffix picks
``<epoch>_net_G<suffix>.pth``.

The reference-layout state_dicts are built as in tests/test_reference_compat.py (our network's
tensors under the reference's keys); the real reference key lists of
tests/fixtures/reference_state_dict_keys.txt check the reading on real layouts.
"""
from __future__ import annotations

import re
from collections import OrderedDict
from pathlib import Path

import pytest
import torch

import test as test_driver
from engine.checkpoint import CheckpointError
from models.load_generator import find_generator, load_into, options_for, spec_for
from models.networks import build_generator
from options.base import Options
from options.parse import parse_options
from tests.test_reference_compat import KEY_SECTIONS, make_reference_state, randomize, size_of

SIDE = {"unet_256": 256, "unet_128": 128}   # ResNets: 32


def save_reference(folder: Path, net_g: str, norm: str, ngf: int = 8, dropout: bool = False,
                   input_nc: int = 3, output_nc: int = 3, file: str = "latest_net_G.pth") -> torch.nn.Module:
    """Writes a reference-layout G file; returns the network whose function its weights are."""
    source = randomize(build_generator(net_g, input_nc=input_nc, output_nc=output_nc, ngf=ngf, norm=norm,
                                       dropout=dropout), seed=7)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(make_reference_state(source, net_g, size_of(net_g), norm), folder / file)
    return source


def inference_options(folder: Path, *flags: str) -> Options:
    return parse_options(["--model", "test", "--dataroot", str(folder), "--checkpoints_dir", str(folder.parent),
                          "--name", folder.name, "--gpu_ids", "-1", *flags], is_train=False)


CASES = ([(g, n, None) for g in ("unet_128", "unet_256") for n in ("batch", "instance", "none")]
         + [(g, n, d) for g in ("resnet_6blocks", "resnet_9blocks") for n in ("batch", "instance", "none")
            for d in (False, True)])


@pytest.mark.parametrize("net_g,norm,dropout", CASES)
def test_architecture_is_read_from_the_file_and_computes_its_function(tmp_path: Path, net_g: str, norm: str,
                                                                      dropout: bool | None) -> None:
    folder = tmp_path / "ref"
    source = save_reference(folder, net_g, norm, dropout=bool(dropout), input_nc=1, output_nc=2)
    opt = inference_options(folder)                 # --model test: unet_256, batch norm, 3 -> 3 by default
    saved = find_generator(folder, "latest")
    spec = spec_for(opt, saved)
    assert (spec.name, spec.ngf, spec.norm, spec.input_nc, spec.output_nc) == (net_g, 8, norm, 1, 2)
    # A ResNet's dropout shows in its keys; a U-Net's does not, so it stays the options' (on).
    assert spec.dropout is (dropout if dropout is not None else True)
    net = spec.build()
    load_into(net, saved)
    side = SIDE.get(net_g, 32)
    x = torch.randn(2, 1, side, side, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(net.eval()(x), source(x))
    assert options_for(opt, saved)["netG"] == net_g


@pytest.mark.parametrize("dropout,second_conv", [(False, 5), (True, 6)])
def test_the_reference_resnet_block_layout_the_files_are_built_with(tmp_path: Path, dropout: bool,
                                                                   second_conv: int) -> None:
    # Written from the reference's ResnetBlock: pad, conv, norm, ReLU, [Dropout], pad, conv, norm.
    save_reference(tmp_path, "resnet_6blocks", "instance", dropout=dropout)
    keys = [k for k in torch.load(tmp_path / "latest_net_G.pth", weights_only=True) if k.startswith("model.10.")]
    assert keys == ["model.10.conv_block.1.weight", "model.10.conv_block.1.bias",
                    f"model.10.conv_block.{second_conv}.weight", f"model.10.conv_block.{second_conv}.bias"]


@pytest.mark.parametrize("title,config,keys", [s for s in KEY_SECTIONS if s[1]["net"] == "G"],
                         ids=[s[0].split(":")[0] for s in KEY_SECTIONS if s[1]["net"] == "G"])
def test_real_reference_key_lists_give_their_architecture(tmp_path: Path, title: str, config: dict,
                                                          keys: list) -> None:
    state = OrderedDict((k, torch.zeros(shape) if dtype == "float32" else torch.tensor(0))
                        for k, shape, dtype in keys)
    folder = tmp_path / "ref"
    folder.mkdir()
    torch.save(state, folder / "latest_net_G.pth")
    spec = spec_for(inference_options(folder), find_generator(folder, "latest"))
    assert (spec.name, spec.ngf, spec.norm, spec.input_nc, spec.output_nc) == (config["name"], 64, config["norm"], 3, 3)
    assert spec.dropout   # the listed files were all trained with dropout (ResNets: conv_block.6)


@pytest.mark.parametrize("typed,message", [
    (["--netG", "resnet_6blocks"], "checkpoint was trained with --netG resnet_9blocks, you asked for --netG resnet_6blocks"),
    (["--norm", "batch"], "checkpoint was trained with --norm instance, you asked for --norm batch"),
    (["--norm", "group"], "checkpoint was trained with --norm instance, you asked for --norm group"),
    (["--ngf", "16"], "checkpoint was trained with --ngf 8, you asked for --ngf 16"),
    (["--input_nc", "1"], "checkpoint was trained with --input_nc 3, you asked for --input_nc 1"),
])
def test_a_typed_flag_that_contradicts_the_file_is_one_line(tmp_path: Path, typed: list, message: str,
                                                           capsys) -> None:
    folder = tmp_path / "ref"
    save_reference(folder, "resnet_9blocks", "instance")
    with pytest.raises(CheckpointError, match=re.escape(f"{folder / 'latest_net_G.pth'}: {message}")):
        spec_for(inference_options(folder, *typed), find_generator(folder, "latest"))
    code = test_driver.main(["--model", "test", "--dataroot", str(folder), "--checkpoints_dir", str(tmp_path),
                             "--name", "ref", "--gpu_ids", "-1", "--load_size", "32", "--crop_size", "32", *typed])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and message in err[0] and "latest_net_G.pth" in err[0]


def test_typed_values_the_file_allows_are_kept(tmp_path: Path) -> None:
    folder = tmp_path / "ref"
    save_reference(folder, "unet_256", "batch")
    # The generic U-Net of 8 downsamplings has unet_256's layout; syncbatch computes batch norm.
    spec = spec_for(inference_options(folder, "--netG", "unet", "--norm", "syncbatch"), find_generator(folder, "latest"))
    assert (spec.name, spec.norm) == ("unet", "syncbatch")
    spec = spec_for(inference_options(folder, "--no_dropout"), find_generator(folder, "latest"))
    assert spec.name == "unet_256" and spec.dropout is False


def test_no_dropout_typed_on_a_resnet_file_with_dropout_turns_it_off(tmp_path: Path) -> None:
    # As for our own files: the network keeps the file's Dropout modules (they shift the keys of
    # a ResNet block), and a typed --no_dropout switches them off at run time.
    folder = tmp_path / "ref"
    save_reference(folder, "resnet_6blocks", "batch", dropout=True)
    opt, saved = inference_options(folder, "--no_dropout"), find_generator(folder, "latest")
    assert spec_for(opt, saved).dropout is True
    assert options_for(opt, saved)["dropout"] == "off"


def test_model_test_on_a_resnet_instance_file_runs_without_architecture_flags(tmp_path: Path, capsys) -> None:
    """The reference's documented command for its pretrained CycleGAN generators:
    ``test.py --dataroot X --name horse2zebra_pretrained --model test --no_dropout``."""
    from tests.pipeline_helpers import make_aligned_dataset

    data = make_aligned_dataset(tmp_path / "data", {"test": 2})
    save_reference(tmp_path / "ck" / "horse2zebra_pretrained", "resnet_9blocks", "instance", ngf=4)
    code = test_driver.main(["--dataroot", str(data / "test"), "--name", "horse2zebra_pretrained", "--model", "test",
                             "--no_dropout", "--checkpoints_dir", str(tmp_path / "ck"), "--results_dir",
                             str(tmp_path / "results"), "--load_size", "32", "--crop_size", "32", "--gpu_ids", "-1",
                             "--num_threads", "0"])
    out = capsys.readouterr().out
    assert code == 0
    assert ("latest_net_G.pth (reference file): --netG resnet_9blocks --ngf 4 --norm instance, 3 -> 3 channels, "
            "dropout off, read from its weights") in out
    assert out.count("(reference file)") == 1
    assert len(list((tmp_path / "results" / "horse2zebra_pretrained").rglob("*fake_B*"))) == 2


def test_model_suffix_loads_that_reference_file(tmp_path: Path) -> None:
    folder = tmp_path / "cyclegan"
    source = save_reference(folder, "resnet_6blocks", "instance", file="latest_net_G_A.pth")
    save_reference(folder, "unet_128", "batch")      # a plain latest_net_G.pth beside it is not taken
    opt = inference_options(folder, "--model_suffix", "_A")
    assert opt.model_suffix == "_A"
    saved = find_generator(folder, "latest", model_suffix=opt.model_suffix)
    assert saved.path.name == "latest_net_G_A.pth"
    net = spec_for(opt, saved).build()
    load_into(net, saved)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(net.eval()(x), source(x))
    with pytest.raises(CheckpointError, match=re.escape("no reference generator 'latest_net_G_B.pth'")):
        find_generator(folder, "latest", model_suffix="_B")


def test_model_suffix_through_test_py(tmp_path: Path, capsys) -> None:
    """The reference's one-sided test of a CycleGAN direction: ``--model test --model_suffix _A``."""
    from tests.pipeline_helpers import make_aligned_dataset

    data = make_aligned_dataset(tmp_path / "data", {"test": 2})
    save_reference(tmp_path / "ck" / "cyclegan", "resnet_6blocks", "instance", ngf=4, file="latest_net_G_A.pth")
    code = test_driver.main(["--dataroot", str(data / "test"), "--name", "cyclegan", "--model", "test",
                             "--model_suffix", "_A", "--checkpoints_dir", str(tmp_path / "ck"), "--results_dir",
                             str(tmp_path / "results"), "--load_size", "32", "--crop_size", "32", "--gpu_ids", "-1",
                             "--num_threads", "0"])
    out = capsys.readouterr().out
    assert code == 0
    assert "latest_net_G_A.pth (reference file): --netG resnet_6blocks --ngf 4 --norm instance" in out
    assert len(list((tmp_path / "results" / "cyclegan").rglob("*fake_B*"))) == 2
