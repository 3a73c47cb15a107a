"""The quality options: --upsample, --netD multiscale --num_D with --lambda_feat, --ema_decay.

Shapes and parameter counts are checked against hand computations, the losses against
their formulas written out, and training with every norm, exact resume, DDP and inference
(test.py, the shared inference loader) end to end on tiny networks.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import test as test_driver
import train as train_script
from engine.distributed import Runtime, unwrap
from inference.generator import load_generator
from models.ema import WeightAverage
from models.feature_matching import feature_matching_loss, over_scales
from models.load_generator import find_generator
from models.networks import UPSAMPLERS, build_discriminator, build_generator
from models.norms import NORMS
from options.inference import parse_inference_options
from options.parse import parse_options
from tests.distributed_helpers import run_distributed
from tests.pipeline_helpers import make_aligned_dataset, tiny_args


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


# -- --upsample ---------------------------------------------------------------------------
# unet_128 at ngf 4, 3 -> 3 channels: (channels into, channels out of) each decoder upsampler,
# innermost first: 8ngf -> 8ngf, twice 16ngf -> 8ngf, then 16ngf -> 4ngf, 8ngf -> 2ngf,
# 4ngf -> ngf, and 2ngf -> output_nc at the outermost level.
UNET128_UPS = [(32, 32), (64, 32), (64, 32), (64, 16), (32, 8), (16, 4), (8, 3)]


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
def test_resize_decoder_swaps_4x4_deconvs_for_3x3_convs(mode: str) -> None:
    deconv = build_generator("unet_128", input_nc=3, output_nc=3, ngf=4, norm="batch", dropout=True)
    resize = build_generator("unet_128", input_nc=3, output_nc=3, ngf=4, norm="batch", dropout=True, upsample=mode)
    # Same biases and norms; each upsampler's weight goes from in*out*16 to in*out*9.
    assert n_params(deconv) - n_params(resize) == sum(i * o * (16 - 9) for i, o in UNET128_UPS)
    assert not any(isinstance(m, nn.ConvTranspose2d) for m in resize.modules())
    ups = [m for m in resize.modules() if isinstance(m, nn.Upsample)]
    assert len(ups) == 7 and all(u.mode == mode and u.scale_factor == 2 for u in ups)
    x = torch.randn(2, 3, 128, 128)
    assert resize(x).shape == (2, 3, 128, 128)


def test_resize_upsampler_is_resize_then_conv() -> None:
    torch.manual_seed(0)
    net = build_generator("unet_128", input_nc=3, output_nc=3, ngf=4, norm="batch", dropout=False, upsample="bilinear")
    layer = net.model.up[1]   # the outermost upsampler, at the index reference files address
    x = torch.randn(1, 8, 64, 64)
    expected = F.conv2d(F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False),
                        layer[1].weight, layer[1].bias, padding=1)
    assert torch.allclose(layer(x), expected, atol=1e-6)


def test_deconv_default_keeps_the_reference_keys() -> None:
    net = build_generator("unet_256", input_nc=3, output_nc=3, ngf=64, norm="batch", dropout=True)
    assert n_params(net) == 54_413_955   # the reference's count (tests/test_networks.py)
    assert isinstance(net.model.up[1], nn.ConvTranspose2d) and "model.up.1.weight" in net.state_dict()


@pytest.mark.parametrize("mode", UPSAMPLERS.names())
def test_resnet_takes_every_upsampler(mode: str) -> None:
    small = dict(input_nc=3, output_nc=3, ngf=4, norm="instance", dropout=False)
    net = build_generator("resnet_6blocks", **small, upsample=mode)
    assert net(torch.randn(1, 3, 32, 32)).shape == (1, 3, 32, 32)
    # A 3x3 deconv and a 3x3 conv hold the same number of weights.
    assert n_params(net) == n_params(build_generator("resnet_6blocks", **small))


# -- multiscale D and feature matching ----------------------------------------------------
@pytest.mark.parametrize("num_d, shapes", [
    # 128 px, 3 layers: 128 -> 64 -> 32 -> 16 -> 15 -> 14 logits; each scale halves the input.
    (2, [(2, 1, 14, 14), (2, 1, 6, 6)]),
    (3, [(2, 1, 14, 14), (2, 1, 6, 6), (2, 1, 2, 2)]),
])
def test_multiscale_outputs_and_parameters(num_d: int, shapes) -> None:
    net = build_discriminator("multiscale", input_nc=6, ndf=64, n_layers=3, norm="batch", num_D=num_d)
    assert n_params(net) == num_d * 2_768_705   # num_D copies of the reference 70x70 PatchGAN
    out = net(torch.randn(2, 6, 128, 128))
    assert [tuple(t.shape) for t in out] == shapes


def test_multiscale_halves_with_a_3x3_average_pool() -> None:
    torch.manual_seed(0)
    net = build_discriminator("multiscale", input_nc=6, ndf=8, n_layers=3, norm="instance", num_D=2).eval()
    x = torch.randn(1, 6, 64, 64)
    half = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
    features = net.scale_features(x)
    assert torch.allclose(features[1][-1], net.scales[1](half))
    assert torch.allclose(features[0][-1], net(x)[0])
    assert len(features[0]) == 5   # 4 intermediate stages of a 3-layer PatchGAN, then the logits


def test_feature_matching_is_pix2pixhds_weighted_l1() -> None:
    fake = [[torch.full((1, 2, 2, 2), 1.0, requires_grad=True), torch.full((1, 1, 2, 2), 3.0), torch.zeros(1)],
            [torch.full((1, 2, 1, 1), 0.0), torch.full((1, 1, 1, 1), 2.0), torch.zeros(1)]]
    real = [[torch.full((1, 2, 2, 2), 0.5), torch.full((1, 1, 2, 2), 1.0), torch.ones(1)],
            [torch.full((1, 2, 1, 1), 1.0), torch.full((1, 1, 1, 1), 2.0), torch.ones(1)]]
    # Two intermediate layers per scale: weight 4/2 each; logits left out; mean over 2 scales.
    expected = ((2 * 0.5 + 2 * 2.0) + (2 * 1.0 + 2 * 0.0)) / 2
    loss = feature_matching_loss(fake, real)
    assert loss.item() == pytest.approx(expected)
    loss.backward()
    assert fake[0][0].grad is not None


def test_gan_loss_over_scales_is_the_mean() -> None:
    maps = [torch.full((1, 1, 2, 2), 2.0), torch.full((1, 1, 1, 1), 4.0)]
    assert over_scales(lambda t: t.mean(), maps).item() == pytest.approx(3.0)
    assert over_scales(lambda t: t.mean(), maps[0]).item() == pytest.approx(2.0)


# -- EMA --------------------------------------------------------------------------------
def test_ema_update_is_the_warmed_up_average() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    ema = WeightAverage(net, 0.999)
    start = [p.detach().clone() for p in net.parameters()]
    for step in range(3):
        with torch.no_grad():
            for p in net.parameters():
                p.add_(1.0)
            net[1].running_mean.add_(0.5)
        before = [p.clone() for p in ema.net.parameters()]
        decay = min(0.999, (1 + step) / (10 + step))   # 0.1, 2/11, 3/12
        ema.update(net)
        for avg, old, p in zip(ema.net.parameters(), before, net.parameters()):
            assert torch.allclose(avg, decay * old + (1 - decay) * p)
        assert torch.equal(ema.net[1].running_mean, net[1].running_mean)
    assert all(not p.requires_grad for p in ema.net.parameters())
    assert not torch.equal(next(ema.net.parameters()), start[0])


QUALITY_FLAGS = ["--upsample", "bilinear", "--netD", "multiscale", "--num_D", "2", "--lambda_feat", "10",
                 "--ema_decay", "0.99"]


@pytest.mark.parametrize("norm", NORMS.names())
def test_every_norm_trains_with_all_options(norm: str, tmp_path: Path) -> None:
    data = make_aligned_dataset(tmp_path / "data", {"train": 2})
    args = tiny_args(data, tmp_path / "ck") + ["--netG", "unet_128", "--load_size", "128", "--crop_size", "128",
                                               "--norm", norm, "--batch_size", "2", "--amp", "none",
                                               *QUALITY_FLAGS]
    opt = parse_options(args, is_train=True)
    from models import create_model
    model = create_model(opt, Runtime(torch.device("cpu"), 0, 1, 0))
    model.set_input(next(iter(_batches(data, opt))))
    g_before = [p.detach().clone() for p in model.ema.net.parameters()]
    losses = model.train_step()
    assert set(losses) == {"G_GAN", "G_L1", "G_feat", "D_real", "D_fake"}
    assert all(torch.isfinite(v) for v in losses.values()) and losses["G_feat"] > 0
    assert any(not torch.equal(a, b) for a, b in zip(g_before, model.ema.net.parameters()))


def _batches(data: Path, opt):
    from data import create_dataset
    from data.loader import create_dataloader
    from options.configs import data_config
    return create_dataloader(create_dataset(opt.dataset_mode, data_config(opt)), opt.batch_size, shuffle=False,
                             num_workers=0, seed=0)


@pytest.fixture(scope="module")
def ema_runs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """4 steps straight, and 2 + 2 with a resume in between, with every quality option."""
    root = tmp_path_factory.mktemp("ema")
    # 128 px: the third scale of D sees 32 px, the least a 3-layer PatchGAN takes.
    data = make_aligned_dataset(root / "data", {"train": 3, "test": 2}, size=128)
    flags = ["--load_size", "128", "--crop_size", "128",
             "--upsample", "nearest", "--netD", "multiscale", "--num_D", "3", "--lambda_feat", "5",
             "--ema_decay", "0.9", "--n_epochs", "2", "--n_epochs_decay", "0", "--seed", "4"]
    assert train_script.main(tiny_args(data, root / "a") + flags + ["--max_steps", "4"]) == 0
    split = tiny_args(data, root / "b") + flags
    assert train_script.main(split + ["--max_steps", "2"]) == 0
    assert train_script.main(split + ["--max_steps", "4", "--continue_train"]) == 0
    load = lambda d: torch.load(d / "tiny" / "latest.pt", weights_only=True)  # noqa: E731
    return {"data": data, "root": root, "a": load(root / "a"), "b": load(root / "b")}


def test_ema_is_saved_and_resumed_exactly(ema_runs) -> None:
    a, b = ema_runs["a"], ema_runs["b"]
    assert a["ema"]["G"]["updates"] == b["ema"]["G"]["updates"] == 4
    for key, value in a["ema"]["G"]["net"].items():
        assert torch.equal(value, b["ema"]["G"]["net"][key]), key
    for net in ("G", "D"):
        for key, value in a["nets"][net].items():
            assert torch.equal(value, b["nets"][net][key]), f"{net}.{key}"
    # The average is not G itself.
    assert any(not torch.equal(v, a["nets"]["G"][k]) for k, v in a["ema"]["G"]["net"].items())


def test_inference_uses_ema_unless_no_ema(ema_runs, tmp_path: Path) -> None:
    exp = ema_runs["root"] / "a" / "tiny"
    saved = find_generator(exp, "latest")
    assert saved.ema and all(torch.equal(v, ema_runs["a"]["ema"]["G"]["net"][k]) for k, v in saved.state_dict.items())
    own = find_generator(exp, "latest", use_ema=False)
    assert not own.ema and all(torch.equal(v, ema_runs["a"]["nets"]["G"][k]) for k, v in own.state_dict.items())

    argv = ["--name", "tiny", "--checkpoints_dir", str(ema_runs["root"] / "a"), "--gpu_ids", "-1"]
    for extra, expected in (([], "ema"), (["--no_ema"], "nets")):
        loaded = load_generator(parse_inference_options([*argv, *extra], "translate.py", "test"))
        weights = ema_runs["a"]["ema"]["G"]["net"] if expected == "ema" else ema_runs["a"]["nets"]["G"]
        assert all(torch.equal(v, weights[k]) for k, v in loaded.net.state_dict().items()), extra
        assert loaded.opt.upsample == "nearest"

    common = ["--dataroot", str(ema_runs["data"]), "--checkpoints_dir", str(ema_runs["root"] / "a"), "--name",
              "tiny", "--load_size", "128", "--crop_size", "128", "--num_threads", "0", "--gpu_ids", "-1"]
    for extra, marker in (([], True), (["--no_ema"], False)):
        results = tmp_path / ("own" if extra else "ema")
        assert test_driver.main([*common, "--results_dir", str(results), *extra]) == 0
        behaviour = json.loads((results / "tiny" / "test_latest" / "metrics.json").read_text())["behaviour"]
        assert ("EMA weights" in behaviour) == marker


def _ddp_quality(rank: int, world_size: int, root: str) -> dict:
    runtime = Runtime(device=torch.device("cpu"), rank=rank, world_size=world_size, local_rank=rank)
    data = Path(root) / "data"
    opt = parse_options(tiny_args(data, Path(root) / "ck", "ddp") + [
        "--load_size", "64", "--crop_size", "64", "--batch_size", "1", "--max_steps", "2", "--amp", "none",
        "--no_html", *QUALITY_FLAGS], is_train=True)
    state, model = train_script.train(opt, runtime)
    # Parameters only: batch-norm buffers are each rank's own statistics (DDP broadcasts rank 0's
    # at the start of every forward), and the average copies them from its rank's G.
    params = lambda net: {k: v.detach().clone() for k, v in net.named_parameters()}  # noqa: E731
    return {"G": params(unwrap(model.nets["G"])), "D": params(unwrap(model.nets["D"])),
            "ema": params(model.ema.net), "step": state.step}


def test_two_ranks_train_all_options_in_lockstep(tmp_path: Path) -> None:
    make_aligned_dataset(tmp_path / "data", {"train": 4}, size=64)
    ranks = run_distributed(_ddp_quality, 2, str(tmp_path), timeout_s=180)
    assert ranks[0]["step"] == ranks[1]["step"] == 2
    for part in ("G", "D", "ema"):
        for key, value in ranks[0][part].items():
            assert torch.equal(value, ranks[1][part][key]), f"{part}.{key}"


@pytest.mark.parametrize("side, n_layers, num_d", [(128, 3, 3), (64, 3, 2), (100, 2, 2), (33, 1, 3), (32, 3, 2)])
def test_smallest_scale_side_matches_the_network(side: int, n_layers: int, num_d: int) -> None:
    from models.networks.multiscale import smallest_logit_side

    net = build_discriminator("multiscale", input_nc=6, ndf=4, n_layers=n_layers, norm="instance", num_D=num_d)
    expected = smallest_logit_side(side, n_layers, num_d)
    if expected >= 1:
        assert net(torch.randn(1, 6, side, side))[-1].shape[-1] == expected
    else:
        with pytest.raises((RuntimeError, ValueError)):   # no pixels left, or instance norm of one
            net(torch.randn(1, 6, side, side))


def test_a_crop_too_small_for_the_scales_is_one_line(tmp_path: Path, capsys) -> None:
    args = tiny_args(tmp_path / "data", tmp_path / "ck") + ["--netD", "multiscale", "--num_D", "2"]
    with pytest.raises(SystemExit) as stop:
        parse_options(args, is_train=True)
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--num_D 2" in err and "32 px" in err


@pytest.mark.parametrize("net_d,n_layers", [("basic", 3), ("n_layers", 1), ("n_layers", 4), ("n_layers", 5)])
@pytest.mark.parametrize("side", [16, 20, 24, 32, 48, 64])
def test_a_patchgan_too_deep_for_the_crop_is_refused_exactly_when_it_would_fail(
        tmp_path: Path, capsys, net_d: str, n_layers: int, side: int) -> None:
    """The oracle is the network itself, with instance norm (it fails on a one-pixel map too):
    parsing refuses a crop exactly when a forward pass at that size has no logits to give. It used
    to fail with a traceback at the first step (or inside --amp auto's probe)."""
    net = build_discriminator(net_d, input_nc=6, ndf=2, n_layers=n_layers, norm="instance")
    try:
        works = net(torch.randn(1, 6, side, side)).numel() > 0
    except (RuntimeError, ValueError):
        works = False
    args = tiny_args(tmp_path / "data", tmp_path / "ck") + [
        "--netD", net_d, "--n_layers_D", str(n_layers), "--norm", "instance", "--load_size", str(side),
        "--crop_size", str(side)]
    if works:
        parse_options(args, is_train=True)
        return
    with pytest.raises(SystemExit):
        parse_options(args, is_train=True)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{side} px crop is too small" in err and f"--netD {net_d}" in err


def test_amp_auto_probe_takes_a_multiscale_d(tmp_path: Path) -> None:
    from engine.amp_auto import probe_step
    from models import create_model

    opt = parse_options(tiny_args(tmp_path / "data", tmp_path / "ck") + ["--netD", "multiscale", "--num_D", "2",
                                                                         "--load_size", "64", "--crop_size", "64"],
                        is_train=True)
    torch.manual_seed(0)
    model = create_model(opt, Runtime(torch.device("cpu"), 0, 1, 0))
    before = {k: v.clone() for k, v in unwrap(model.net_D).state_dict().items()}
    real = torch.randn(1, 3, 64, 64)
    probe_step(model, {"A": real, "B": real}, "none", torch.device("cpu"))()   # a list of logit maps
    # The probe trains a copy: this D has neither gradients nor changed weights.
    assert all(p.grad is None for p in model.net_D.parameters())
    assert all(torch.equal(v, before[k]) for k, v in unwrap(model.net_D).state_dict().items())
