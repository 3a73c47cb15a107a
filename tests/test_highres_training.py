"""--netG local through train.py: rectangular pairs, --niter_fix_global (also across an exact
resume), --grad_checkpoint in a real step, and the one-line errors."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import test as test_driver
import train as train_driver
from engine.distributed import Runtime
from models import create_model
from models.networks.local_enhancer import LocalEnhancerGenerator
from models.norms import norm_spec
from options.parse import parse_options
from tests.pipeline_helpers import tiny_args

HEIGHT, WIDTH = 64, 128
# Tiny widths, pix2pixHD's D and losses.
LOCAL = ["--netG", "local", "--ngf", "4", "--n_blocks_global", "2", "--n_downsample_global", "2",
         "--netD", "multiscale", "--num_D", "2", "--lambda_feat", "10",
         "--norm", "instance", "--preprocess", "none", "--crop_size", "128", "--load_size", "128", "--no_flip",
         "--amp", "none", "--print_freq", "100"]


@pytest.fixture(scope="module")
def wide_pairs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A|B pairs of 128x64 (wider than high), B the negative of A."""
    root = tmp_path_factory.mktemp("wide")
    rng = np.random.default_rng(0)
    for phase, count in (("train", 3), ("test", 1)):
        (root / phase).mkdir()
        for i in range(count):
            a = rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
            Image.fromarray(np.concatenate([a, 255 - a], axis=1)).save(root / phase / f"{i}.png")
    return root


def args(data: Path, ck: Path, *extra: str) -> list[str]:
    return tiny_args(data, ck, "hd") + LOCAL + list(extra)


def load(path: Path) -> dict:
    return torch.load(path, weights_only=True)


def initial_generator(data: Path, ck: Path, *extra: str) -> dict[str, torch.Tensor]:
    """G's weights as train.py starts them (seeded before the model is built)."""
    opt = parse_options(args(data, ck, *extra), is_train=True)
    torch.manual_seed(opt.seed)
    model = create_model(opt, Runtime(torch.device("cpu"), 0, 1, 0))
    return {k: v.clone() for k, v in model.net_G.state_dict().items()}


def split(state: dict[str, torch.Tensor]) -> tuple[dict, dict]:
    g1 = {k: v for k, v in state.items() if k.startswith("global_generator.")}
    g2 = {k: v for k, v in state.items() if k.startswith("enhancers.")}
    assert g1 and g2 and len(g1) + len(g2) == len(state)
    return g1, g2


def test_two_steps_on_rectangular_pairs(wide_pairs: Path, tmp_path: Path) -> None:
    assert train_driver.main(args(wide_pairs, tmp_path, "--max_steps", "2")) == 0
    ckpt = load(tmp_path / "hd" / "latest.pt")
    assert ckpt["state"]["step"] == 2 and ckpt["options"]["netG"] == "local"
    assert all(torch.isfinite(v).all() for v in ckpt["nets"]["G"].values() if v.is_floating_point())


def test_test_py_translates_with_the_trained_generator(wide_pairs: Path, tmp_path: Path) -> None:
    """The checkpoint round trip through the drivers: test.py rebuilds --netG local from the file
    alone and writes 128x64 outputs equal (to 8-bit rounding) to the trained G's forward."""
    assert train_driver.main(args(wide_pairs, tmp_path, "--max_steps", "2", "--no_dropout",
                                  "--n_local_enhancers", "2")) == 0
    fields = load(tmp_path / "hd" / "latest.pt")["specs"]["G"]["fields"]
    assert (fields["n_local_enhancers"], fields["n_blocks_global"], fields["n_blocks_local"],
            fields["n_downsample_global"], fields["ngf"]) == (2, 2, 3, 2, 4)
    # No architecture flag at test time: the spec in the checkpoint rebuilds G.
    assert test_driver.main(["--dataroot", str(wide_pairs), "--checkpoints_dir", str(tmp_path), "--name", "hd",
                             "--results_dir", str(tmp_path / "r"), "--preprocess", "none", "--crop_size", "128",
                             "--load_size", "128", "--num_threads", "0", "--gpu_ids", "-1"]) == 0
    written = np.asarray(Image.open(tmp_path / "r" / "hd" / "test_latest" / "images" / "0_fake_B.png"))
    assert written.shape == (HEIGHT, WIDTH, 3)
    net = LocalEnhancerGenerator(input_nc=3, output_nc=3, ngf=4, norm=norm_spec("instance"), dropout=False,
                                 n_local_enhancers=2, n_blocks_global=2, n_blocks_local=3, n_downsample_global=2)
    net.load_state_dict(load(tmp_path / "hd" / "latest.pt")["nets"]["G"])
    a = np.array(Image.open(wide_pairs / "test" / "0.png"))[:, :WIDTH]
    with torch.no_grad():
        fake = net.eval()(torch.from_numpy(a).permute(2, 0, 1)[None].float() / 127.5 - 1)[0]
    expected = ((fake.permute(1, 2, 0).numpy() + 1) * 127.5)
    assert np.abs(written.astype(np.float64) - expected).max() <= 1.0


def test_global_generator_fixed_for_the_first_epochs_then_trained(wide_pairs: Path, tmp_path: Path) -> None:
    schedule = ["--niter_fix_global", "1", "--n_epochs", "1", "--n_epochs_decay", "1", "--save_epoch_freq", "1"]
    start_g1, start_g2 = split(initial_generator(wide_pairs, tmp_path, *schedule))
    assert train_driver.main(args(wide_pairs, tmp_path, *schedule)) == 0
    after_1_g1, after_1_g2 = split(load(tmp_path / "hd" / "1.pt")["nets"]["G"])
    after_2_g1, _ = split(load(tmp_path / "hd" / "2.pt")["nets"]["G"])
    assert all(torch.equal(start_g1[k], after_1_g1[k]) for k in start_g1)       # epoch 1: G1 fixed
    assert any(not torch.equal(start_g2[k], after_1_g2[k]) for k in start_g2)    # ... while G2 trained
    weights = [k for k in start_g1 if k.endswith("weight")]
    assert all(not torch.equal(after_1_g1[k], after_2_g1[k]) for k in weights)  # epoch 2: all of G trains


@pytest.mark.parametrize("stop_after", [2, 4])   # inside the fixed epoch; inside the first free one
def test_resume_across_the_fixed_epochs_is_exact(wide_pairs: Path, tmp_path: Path, stop_after: int) -> None:
    common = ["--niter_fix_global", "1", "--n_epochs", "1", "--n_epochs_decay", "1", "--seed", "3"]
    assert train_driver.main(args(wide_pairs, tmp_path / "a", *common)) == 0
    assert train_driver.main(args(wide_pairs, tmp_path / "b", *common, "--max_steps", str(stop_after))) == 0
    assert train_driver.main(args(wide_pairs, tmp_path / "b", *common, "--continue_train")) == 0
    a, b = load(tmp_path / "a" / "hd" / "latest.pt"), load(tmp_path / "b" / "hd" / "latest.pt")
    assert a["state"] == b["state"]
    for net in ("G", "D"):
        for key, value in a["nets"][net].items():
            assert torch.equal(value, b["nets"][net][key]), f"{net}.{key}"


def test_grad_checkpoint_trains_the_same_weights(wide_pairs: Path, tmp_path: Path) -> None:
    """Two steps with and without --grad_checkpoint end with the same G (batch norm and dropout
    on: the parts a recomputation could change)."""
    extra = ["--max_steps", "2", "--norm", "batch"]
    assert train_driver.main(args(wide_pairs, tmp_path / "a", *extra)) == 0
    assert train_driver.main(args(wide_pairs, tmp_path / "b", *extra, "--grad_checkpoint")) == 0
    a, b = load(tmp_path / "a" / "hd" / "latest.pt"), load(tmp_path / "b" / "hd" / "latest.pt")
    for key, value in a["nets"]["G"].items():
        torch.testing.assert_close(b["nets"]["G"][key], value, rtol=1e-5, atol=1e-6, msg=key)


def test_global_generator_trained_at_half_size_starts_the_local_one(wide_pairs: Path, tmp_path: Path,
                                                                     capsys) -> None:
    """The paper's order: G1 alone (--netG global, ngf 8 = 4 x 2**1) on the pairs at half size,
    then --netG local from it with G1 fixed for the first epoch: G1 is still the trained one."""
    # scale_width keeps at least --crop_size of height (the reference's rule): 32 keeps 64 x 32.
    g1_args = ["--netG", "global", "--ngf", "8", "--preprocess", "scale_width", "--load_size", "64",
               "--crop_size", "32", "--num_D", "1", "--max_steps", "2"]
    assert train_driver.main(tiny_args(wide_pairs, tmp_path, "g1") + LOCAL + g1_args) == 0
    g1 = load(tmp_path / "g1" / "latest_net_G.pt")["net_G"]
    assert "head.1.weight" in g1
    local = ["--init_global_from", "g1", "--niter_fix_global", "1", "--max_steps", "2"]
    assert train_driver.main(args(wide_pairs, tmp_path, *local)) == 0
    g = load(tmp_path / "hd" / "latest.pt")["nets"]["G"]
    for key, value in g1.items():
        if not key.startswith("head."):
            assert torch.equal(g["global_generator." + key], value), key
    # A global generator of other widths: one line naming the option and the field.
    code = train_driver.main(args(wide_pairs, tmp_path, *local, "--ngf", "8", "--name", "hd2"))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1
    assert "--init_global_from g1: it was trained with ngf 8, the global part of this --netG local needs 16" in err[0]


@pytest.mark.parametrize("extra, message", [
    (["--netG", "unet_128", "--niter_fix_global", "1"], "--niter_fix_global 1 applies to --netG local only"),
    (["--crop_size", "32", "--load_size", "32", "--preprocess", "resize_and_crop", "--n_downsample_global", "4"],
     "--crop_size 32 does not fit --netG local, whose input side must be a multiple of 64"),
    (["--crop_size", "48", "--load_size", "48", "--preprocess", "resize_and_crop", "--n_local_enhancers", "2",
      "--n_downsample_global", "2", "--num_D", "1"],
     "--crop_size 48 does not fit --netG local, whose input side must be a multiple of 32"),
])
def test_bad_combinations_are_one_line(wide_pairs: Path, tmp_path: Path, capsys, extra: list[str],
                                       message: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        train_driver.main(args(wide_pairs, tmp_path, *extra))
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and message in err and len(err.splitlines()) == 1


def test_the_global_options_follow_the_spec_not_the_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """A second coarse-to-fine preset takes --niter_fix_global and --init_global_from as --netG local
    does; a generator without a global part is still refused, naming every preset that has one."""
    from argparse import Namespace

    from models.networks import GENERATORS
    from models.networks.local_enhancer import LocalEnhancerSpec
    from models.networks.spec import Preset
    from options.highres import fix_global_problem
    from util.registry import Entry

    monkeypatch.setitem(GENERATORS._entries, "local_2x", Entry("local_2x", Preset(LocalEnhancerSpec,
                                                                                  {"n_local_enhancers": 2})))
    assert fix_global_problem(Namespace(netG="local_2x", niter_fix_global=1, init_global_from="g1")) is None
    assert fix_global_problem(Namespace(netG="global", niter_fix_global=0, init_global_from="g1")) == \
        "--init_global_from g1 applies to --netG local or local_2x only, got --netG global"
