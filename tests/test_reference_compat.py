"""Reference-implementation checkpoints load into our networks, by structure.

The tests build reference-format state_dicts two ways: with exactly the keys, shapes and order
listed in ``tests/fixtures/reference_state_dict_keys.txt`` (real reference layouts), and by
renaming our own network's keys with the reference's module layout, written out below from
the reference's documented nesting. The converter itself knows neither.
"""
from __future__ import annotations

import argparse
import re
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from torch import nn

from models.networks import build_discriminator, build_generator
from models.reference_compat import convert_reference_discriminator, convert_reference_generator
from engine.checkpoint import CheckpointError

KEYS_FILE = Path(__file__).resolve().parent / "fixtures" / "reference_state_dict_keys.txt"
UNET_DEPTH = {"unet_256": 8, "unet_128": 7}
RESNET_BLOCKS = {"resnet_9blocks": 9, "resnet_6blocks": 6}


# -- the reference's layout, written out for the tests ---------------------------------------
def reference_key(our_key: str, net: str, depth_or_blocks: int) -> str:
    """Our key -> the reference's key for the same tensor."""
    prefix, leaf = our_key.rsplit(".", 1)
    if net in UNET_DEPTH:
        level = prefix.count("inner.")
        module = prefix.split(".")[-2:]           # e.g. ['down', '1'] or ['up', '2']
        module = ".".join(module)
        if level == 0:
            where, index = "model.model", {"down.0": 0, "up.1": 3}[module]
        else:
            where = "model.model.1.model" + ".3.model" * (level - 1)
            table = ({"down.0": 1, "up.1": 3, "up.2": 4} if level == depth_or_blocks - 1
                     else {"down.0": 1, "down.1": 2, "up.1": 5, "up.2": 6})
            index = table[module]
        return f"{where}.{index}.{leaf}"
    if net in RESNET_BLOCKS:
        n = depth_or_blocks
        if prefix.startswith("blocks."):
            _, i, rest = prefix.split(".", 2)
            return f"model.{10 + int(i)}.{rest}.{leaf}"
        fixed = {"stem.1": 1, "stem.2": 2, "downs.0.0": 4, "downs.0.1": 5, "downs.1.0": 7, "downs.1.1": 8,
                 "ups.0.0": 10 + n, "ups.0.1": 11 + n, "ups.1.0": 13 + n, "ups.1.1": 14 + n, "head.1": 17 + n}
        return f"model.{fixed[prefix]}.{leaf}"
    if net in ("basic", "n_layers"):
        parts = prefix.split(".")        # stages.k[.j]
        k = int(parts[1])
        n = depth_or_blocks
        if k == 0:
            index = 0
        elif k == n + 1:
            index = 2 + 3 * n
        else:
            index = 2 + 3 * (k - 1) + int(parts[2])
        return f"model.{index}.{leaf}"
    if net == "pixel":
        return our_key
    raise AssertionError(net)


def make_reference_state(net: nn.Module, name: str, size: int, norm: str, old_instance: bool = False) -> dict:
    """Our net's tensors under reference keys, as the reference would have saved them: with
    norm none, the convs in front of a (missing) norm have no bias, so ours are zeroed first."""
    convs = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    keep_bias = {convs[-1]}
    if name in ("basic", "n_layers", "pixel"):
        keep_bias.add(convs[0])          # D's first conv has no norm after it
    out: "OrderedDict[str, torch.Tensor]" = OrderedDict()
    for mod_name, module in net.named_modules():
        own = dict(module.named_parameters(recurse=False)) | dict(module.named_buffers(recurse=False))
        if norm == "none" and isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)) and module not in keep_bias:
            with torch.no_grad():
                module.bias.zero_()
            own.pop("bias")
        if old_instance and isinstance(module, nn.InstanceNorm2d):
            own = {"running_mean": torch.randn(module.num_features),
                   "running_var": torch.rand(module.num_features) + 0.5}
        for leaf, tensor in own.items():
            if tensor is not None:
                out[reference_key(f"{mod_name}.{leaf}", name, size)] = tensor.detach().clone()
    return out


def randomize(net: nn.Module, seed: int) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for t in list(net.parameters()) + [b for b in net.buffers() if b.is_floating_point()]:
            t.copy_(torch.randn(t.shape, generator=g) * 0.1)
        for m in net.modules():
            if hasattr(m, "running_var") and m.running_var is not None:
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
    return net.eval()


def opts(**kw) -> argparse.Namespace:
    base = dict(netG="unet_256", ngf=4, norm="batch", input_nc=3, output_nc=3, netD="basic", ndf=4,
                n_layers_D=3)
    return argparse.Namespace(**{**base, **kw})


def generator(o: argparse.Namespace, dropout: bool = False) -> nn.Module:
    return build_generator(o.netG, input_nc=o.input_nc, output_nc=o.output_nc, ngf=o.ngf, norm=o.norm, dropout=dropout)


def size_of(name: str) -> int:
    return UNET_DEPTH.get(name) or RESNET_BLOCKS[name]


# -- renamed copies of our networks load and compute the same -------------------------------
@pytest.mark.parametrize("norm", ["batch", "instance", "none"])
@pytest.mark.parametrize("net_g", ["unet_128", "unet_256", "resnet_6blocks", "resnet_9blocks"])
def test_renamed_generator_loads_and_gives_identical_outputs(net_g: str, norm: str) -> None:
    o = opts(netG=net_g, norm=norm, ngf=4)
    source = randomize(generator(o), seed=1)
    ref = make_reference_state(source, net_g, size_of(net_g), norm)
    target = generator(o).eval()
    target.load_state_dict(convert_reference_generator(ref, target))
    side = 256 if net_g == "unet_256" else (128 if net_g == "unet_128" else 32)
    x = torch.randn(2, 3, side, side, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(target(x), source(x))


def test_old_instance_checkpoint_running_stats_are_dropped() -> None:
    o = opts(netG="unet_128", norm="instance")
    source = randomize(generator(o), seed=2)
    ref = make_reference_state(source, "unet_128", 7, "instance", old_instance=True)
    assert any(k.endswith("running_mean") for k in ref)
    target = generator(o).eval()
    target.load_state_dict(convert_reference_generator(ref, target))
    x = torch.randn(1, 3, 128, 128)
    with torch.no_grad():
        assert torch.equal(target(x), source(x))


def test_dataparallel_prefix_and_reference_dropout_layout_load() -> None:
    # A ResNet trained with dropout has its second block conv at conv_block.6, ours without
    # dropout at conv_block.5: the pairing goes by order, not by index.
    o = opts(netG="resnet_6blocks", norm="batch")
    source = randomize(generator(o, dropout=True), seed=3)
    ref = {f"module.{k}": v for k, v in make_reference_state(source, "resnet_6blocks", 6, "batch").items()}
    target = generator(o, dropout=False).eval()
    target.load_state_dict(convert_reference_generator(ref, target))
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(target(x), source(x))


@pytest.mark.parametrize("net_d,n_layers", [("basic", 3), ("n_layers", 2), ("pixel", 3)])
@pytest.mark.parametrize("norm", ["batch", "instance", "none"])
def test_renamed_discriminator_loads_and_gives_identical_outputs(net_d: str, n_layers: int, norm: str) -> None:
    o = opts(netD=net_d, n_layers_D=n_layers, norm=norm)
    build = lambda: build_discriminator(net_d, input_nc=6, ndf=o.ndf, n_layers=n_layers, norm=norm)  # noqa: E731
    source = randomize(build(), seed=4)
    ref = make_reference_state(source, net_d, 3 if net_d == "basic" else n_layers, norm)
    target = build().eval()
    target.load_state_dict(convert_reference_discriminator(ref, target))
    x = torch.randn(1, 6, 32, 32)
    with torch.no_grad():
        assert torch.equal(target(x), source(x))


# -- the reference's own key lists ------------------------------------------------------------
def parse_keys_file() -> list[tuple[str, dict, list[tuple[str, tuple[int, ...], str]]]]:
    sections, current = [], None
    for line in KEYS_FILE.read_text().splitlines():
        if line.startswith("## "):
            m = re.match(r"## ([GD]) (\w+) norm=(\w+)", line)
            net, name, norm = m.groups()
            n_layers = re.search(r"--n_layers_D (\d+)", line)
            config = {"net": net, "name": "n_layers" if n_layers else name, "norm": norm,
                      "n_layers": int(n_layers.group(1)) if n_layers else 3}
            current = (line[3:], config, [])
            sections.append(current)
        elif current is not None and line.strip() and not line.startswith("#"):
            key, shape, dtype = line.split("\t")
            current[2].append((key, tuple(int(s) for s in re.findall(r"\d+", shape)), dtype))
    return sections


KEY_SECTIONS = parse_keys_file()


@pytest.mark.parametrize("title,config,keys", KEY_SECTIONS, ids=[s[0].split(":")[0] for s in KEY_SECTIONS])
def test_reference_key_lists_load_with_every_tensor_in_place(title: str, config: dict, keys: list) -> None:
    # Every tensor is filled with its own position number, so where it lands shows the mapping.
    ref = OrderedDict((k, torch.full(shape, float(i + 1)) if dtype == "float32" else torch.tensor(i + 1))
                      for i, (k, shape, dtype) in enumerate(keys))
    index = {k: i + 1 for i, (k, _, _) in enumerate(keys)}
    if config["net"] == "G":
        o = opts(netG=config["name"], norm=config["norm"], ngf=64)
        net = generator(o, dropout=True)
        convert, size = convert_reference_generator, size_of(config["name"])
    else:
        net = build_discriminator(config["name"], input_nc=6, ndf=64, n_layers=config["n_layers"],
                                  norm=config["norm"])
        convert, size = convert_reference_discriminator, config["n_layers"]
    converted = convert(ref, net)
    net.load_state_dict(converted)   # strict: every key of ours is there, nothing extra
    for key, tensor in net.state_dict().items():
        expected_key = reference_key(key, config["name"], size)
        if expected_key in index:
            assert torch.all(tensor == index[expected_key]), f"{key} did not get {expected_key}"
        else:   # a bias the reference dropped (norm none): zeros
            assert config["norm"] == "none" and key.endswith("bias") and torch.all(tensor == 0), key
    used = {reference_key(k, config["name"], size) for k in net.state_dict()}
    assert set(index) <= used


# -- a file that does not fit names the option to change ---------------------------------------
def reference_of(o: argparse.Namespace) -> dict:
    net = randomize(generator(o), seed=5)
    return make_reference_state(net, o.netG, size_of(o.netG), o.norm)


@pytest.mark.parametrize("saved,asked,hint", [
    (dict(netG="unet_256"), dict(netG="unet_128"), "--netG unet_256"),
    (dict(netG="resnet_9blocks"), dict(netG="resnet_6blocks"), "--netG resnet_9blocks"),
    (dict(netG="unet_128"), dict(netG="resnet_9blocks"), "--netG unet_128"),
    (dict(ngf=8), dict(ngf=4), "--ngf 8"),
    (dict(input_nc=1), dict(input_nc=3), "--input_nc 1"),
    (dict(output_nc=2), dict(output_nc=3), "--output_nc 2"),
    (dict(norm="batch"), dict(norm="instance"), "use --norm batch"),
    (dict(norm="batch"), dict(norm="group"), "use --norm batch"),
    (dict(norm="instance"), dict(norm="batch"), "use --norm instance"),
    (dict(norm="none"), dict(norm="instance"), "use --norm none"),
    (dict(norm="instance"), dict(norm="none"), "use --norm instance"),
])
def test_mismatch_names_the_option(saved: dict, asked: dict, hint: str) -> None:
    ref = reference_of(opts(**saved))
    o = opts(**asked)
    with pytest.raises(CheckpointError, match=re.escape(hint)):
        convert_reference_generator(ref, generator(o))


def test_batch_norm_mismatch_mentions_running_mean() -> None:
    ref = reference_of(opts(norm="batch"))
    o = opts(norm="instance")
    with pytest.raises(CheckpointError, match="running_mean"):
        convert_reference_generator(ref, generator(o))


def test_discriminator_mismatch_names_netD() -> None:
    source = build_discriminator("n_layers", input_nc=6, ndf=4, n_layers=4, norm="batch")
    ref = make_reference_state(source, "n_layers", 4, "batch")
    with pytest.raises(CheckpointError, match=re.escape("--netD n_layers --n_layers_D 4")):
        convert_reference_discriminator(ref, build_discriminator("basic", input_nc=6, ndf=4, norm="batch"))


# -- --continue_train from the reference's G and D files --------------------------------------
def test_continue_train_from_reference_g_and_d_files(tmp_path: Path) -> None:
    import train as train_driver
    from tests.pipeline_helpers import make_aligned_dataset, tiny_args

    data = make_aligned_dataset(tmp_path / "data", {"train": 4})
    exp = tmp_path / "ck" / "tiny"
    exp.mkdir(parents=True)
    o = opts(netG="resnet_6blocks", norm="instance", netD="basic")
    net_g = randomize(generator(o, dropout=True), 1)
    net_d = randomize(build_discriminator("basic", input_nc=6, ndf=4, n_layers=3, norm="instance"), 2)
    torch.save(make_reference_state(net_g, "resnet_6blocks", 6, "instance"), exp / "latest_net_G.pth")
    torch.save(make_reference_state(net_d, "basic", 3, "instance"), exp / "latest_net_D.pth")

    args = tiny_args(data, tmp_path / "ck") + ["--norm", "instance", "--continue_train", "--epoch_count", "5",
                                               "--n_epochs", "5", "--n_epochs_decay", "0", "--max_steps", "1",
                                               "--lr", "1e-12"]
    assert train_driver.main(args) == 0
    saved = torch.load(exp / "latest.pt", weights_only=True)
    assert saved["state"]["epoch"] == 5 and saved["state"]["step"] == 1
    # With a vanishing learning rate one step leaves the loaded weights in place.
    for name, net in (("G", net_g), ("D", net_d)):
        for key, value in net.state_dict().items():
            torch.testing.assert_close(saved["nets"][name][key], value, atol=1e-6, rtol=0, msg=f"{name}.{key}")


# -- the architecture of a reference run, read from its G and D files for a resume ---------------
@pytest.mark.parametrize("net_d,n_layers", [("basic", 3), ("n_layers", 2), ("n_layers", 5), ("pixel", 3)])
@pytest.mark.parametrize("norm", ["batch", "instance", "none"])
def test_discriminator_architecture_is_read_from_its_weights(net_d: str, n_layers: int, norm: str) -> None:
    from models.reference_compat import reference_discriminator_options

    source = build_discriminator(net_d, input_nc=4, ndf=8, n_layers=n_layers, norm=norm)
    ref = make_reference_state(source, net_d, n_layers, norm)
    # The defaults asked (basic, 3 layers, width 64) are kept where the file fits them.
    found = reference_discriminator_options(ref, {"norm": norm, "input_nc": 1, "output_nc": 3, "netD": "basic",
                                                  "n_layers_D": 3, "ndf": 64})
    assert found == {"ndf": 8, "netD": net_d, "n_layers_D": n_layers}


def test_discriminator_of_other_channels_or_norm_is_refused() -> None:
    from models.reference_compat import reference_discriminator_options

    ref = make_reference_state(build_discriminator("basic", input_nc=6, ndf=4, norm="batch"), "basic", 3, "batch")
    asked = {"norm": "batch", "input_nc": 1, "output_nc": 3, "netD": "basic", "n_layers_D": 3}
    with pytest.raises(CheckpointError, match="takes 6 channels in, but its generator's input and output give 4"):
        reference_discriminator_options(ref, asked)
    with pytest.raises(CheckpointError, match="batch norm"):
        reference_discriminator_options(ref, {**asked, "input_nc": 3, "norm": "instance"})


def test_continue_train_from_reference_files_needs_no_architecture_flags(tmp_path: Path, capsys) -> None:
    """The reference's resume command without --netG/--ngf/--ndf/--norm/--netD/--n_layers_D: every
    one comes from the files (a ResNet without dropout, a 2-layer PatchGAN, instance norm), logged,
    and the loaded weights are the files'."""
    import train as train_driver
    from tests.pipeline_helpers import make_aligned_dataset, tiny_args, without

    data = make_aligned_dataset(tmp_path / "data", {"train": 4})
    exp = tmp_path / "ck" / "tiny"
    exp.mkdir(parents=True)
    net_g = randomize(generator(opts(netG="resnet_6blocks", norm="instance", ngf=4), dropout=False), 1)
    net_d = randomize(build_discriminator("n_layers", input_nc=6, ndf=8, n_layers=2, norm="instance"), 2)
    torch.save(make_reference_state(net_g, "resnet_6blocks", 6, "instance"), exp / "latest_net_G.pth")
    torch.save(make_reference_state(net_d, "n_layers", 2, "instance"), exp / "latest_net_D.pth")
    args = without(tiny_args(data, tmp_path / "ck"), "--netG", "--ngf", "--ndf") + [
        "--continue_train", "--epoch_count", "5", "--n_epochs", "5", "--n_epochs_decay", "0", "--max_steps", "1"]
    # A typed flag the files contradict is one line naming the file and the right value; nothing written.
    assert train_driver.main(args + ["--ndf", "16"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "latest_net_D.pth" in err and "--ndf 8" in err
    assert sorted(p.name for p in exp.iterdir()) == ["latest_net_D.pth", "latest_net_G.pth"]
    assert train_driver.main(args + ["--lr", "1e-12"]) == 0
    out = capsys.readouterr().out
    for taken in ("ndf 8", "netD n_layers", "n_layers_D 2", "netG resnet_6blocks", "ngf 4", "norm instance",
                  "no_dropout True"):
        assert taken in out, taken
    saved = torch.load(exp / "latest.pt", weights_only=True)
    assert saved["specs"]["G"]["fields"]["dropout"] is False and saved["specs"]["D"]["fields"]["n_layers"] == 2
    for name, net in (("G", net_g), ("D", net_d)):
        for key, value in net.state_dict().items():
            torch.testing.assert_close(saved["nets"][name][key], value, atol=1e-6, rtol=0, msg=f"{name}.{key}")


# -- a U-Net of a depth no preset has (the reference's --netG unet_N, our --netG unet --num_downs) --
def test_a_missing_label_in_a_reference_run_is_named_with_the_labels_there(tmp_path: Path, capsys) -> None:
    """--continue_train --epoch 7 where the reference's run holds latest and 1: one line listing
    them, said before the architecture (read from the files of the label asked for) is needed."""
    import train as train_driver
    from tests.pipeline_helpers import make_aligned_dataset, tiny_args, without

    data = make_aligned_dataset(tmp_path / "data", {"train": 2})
    exp = tmp_path / "ck" / "tiny"
    exp.mkdir(parents=True)
    net_g = generator(opts(netG="resnet_6blocks", norm="instance", ngf=4), dropout=False)
    net_d = build_discriminator("n_layers", input_nc=6, ndf=8, n_layers=2, norm="instance")
    for label in ("latest", "1"):
        torch.save(make_reference_state(net_g, "resnet_6blocks", 6, "instance"), exp / f"{label}_net_G.pth")
        torch.save(make_reference_state(net_d, "n_layers", 2, "instance"), exp / f"{label}_net_D.pth")
    before = sorted(p.name for p in exp.iterdir())
    args = without(tiny_args(data, tmp_path / "ck"), "--netG", "--ngf", "--ndf")
    assert train_driver.main(args + ["--continue_train", "--epoch", "7"]) == 1
    err = capsys.readouterr().err
    assert err == (f"train.py: error: {exp / '7.pt'}: no such checkpoint to resume from (--continue_train --epoch 7); "
                   "saved: 1, latest\n")
    assert sorted(p.name for p in exp.iterdir()) == before


def unet_reference_of_depth(depth: int) -> dict:
    net = randomize(build_generator("unet", input_nc=3, output_nc=3, ngf=4, norm="batch", dropout=False,
                                    num_downs=depth), 3)
    return make_reference_state(net, "unet_256", depth, "batch")


def test_a_depth_no_preset_has_is_read_from_the_weights() -> None:
    from models.reference_compat import read_reference_generator, reference_generator_options

    found = reference_generator_options(read_reference_generator(unet_reference_of_depth(6)),
                                        {"netG": "unet_256", "norm": "batch", "num_downs": 8, "no_dropout": False})
    assert (found["netG"], found["num_downs"], found["ngf"]) == ("unet", 6, 4)


@pytest.mark.parametrize("asked,hint", [
    (dict(netG="resnet_6blocks"), "--netG unet --num_downs 6"),
    (dict(netG="unet", num_downs=7), "--num_downs 6"),
])
def test_a_wrong_generator_or_depth_is_named(asked: dict, hint: str) -> None:
    net = build_generator(asked["netG"], input_nc=3, output_nc=3, ngf=4, norm="batch", dropout=False,
                          **({"num_downs": asked["num_downs"]} if "num_downs" in asked else {}))
    with pytest.raises(CheckpointError) as refused:
        convert_reference_generator(unet_reference_of_depth(6), net)
    assert str(refused.value).endswith(f": use {hint}")


def test_a_reference_unets_unknown_dropout_is_said_on_resume(tmp_path: Path, caplog) -> None:
    import logging

    from models.reference_compat import reference_run_options

    d_net = randomize(build_discriminator("basic", input_nc=6, ndf=4, norm="batch"), 4)
    torch.save(unet_reference_of_depth(6), tmp_path / "latest_net_G.pth")
    torch.save(make_reference_state(d_net, "basic", 3, "batch"), tmp_path / "latest_net_D.pth")
    options = {"netG": "unet_256", "num_downs": 8, "norm": "batch", "no_dropout": False, "netD": "basic",
               "n_layers_D": 3, "input_nc": 3, "output_nc": 3, "ndf": 64, "ngf": 64}
    with caplog.at_level(logging.INFO):
        found = reference_run_options(tmp_path / "latest_net_G.pth", tmp_path / "latest_net_D.pth", options)
    assert (found["netG"], found["num_downs"], found["ndf"]) == ("unet", 6, 4) and "no_dropout" not in found
    assert ("latest_net_G.pth: a U-Net's weights do not record whether it trained with dropout; training goes on "
            "with dropout on (add --no_dropout if it trained without)") in caplog.text
