"""``train.py --recipe NAME``: a named flag set applied as defaults, a typed flag winning over it.

The rule is checked against values written out by hand (with a recipe made up for the test,
so that it holds whatever the real recipes contain), every registered recipe against typing
its flags, and ``--recipe quality`` end to end: trained a few steps, recorded, resumed, and its
generator loaded by test.py and the inference loader with the recipe's decoder.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from torch import nn

import test as test_driver
import train as train_driver
from inference.generator import load_generator
from options.inference import parse_inference_options
from options.parse import build_parser, parse_options
from options.recipes import DEFAULT_RECIPE, RECIPES, Recipe
from tests.pipeline_helpers import make_aligned_dataset, tiny_args

BASE = ["--gpu_ids", "-1", "--dataroot", "somewhere"]
# Made up for the rule's test: an architecture flag, a float flag and one with choices.
TRIAL = Recipe(("--upsample", "bilinear", "--ema_decay", "0.5", "--gan_mode", "lsgan"), "for the test", "here")


def parse(*argv: str):
    return parse_options([*BASE, *argv], is_train=True)


@pytest.fixture
def trial(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(RECIPES, "trial", TRIAL)


@pytest.mark.parametrize("argv, expected", [
    ([], {"recipe": "paper", "upsample": "deconv", "ema_decay": 0.0, "gan_mode": "vanilla", "lr": 0.0002}),
    (["--recipe", "trial"], {"recipe": "trial", "upsample": "bilinear", "ema_decay": 0.5, "gan_mode": "lsgan",
                             "lr": 0.0002}),
    # Typed flags win, whichever side of --recipe they stand on; the recipe's others stay.
    (["--ema_decay", "0.9", "--recipe", "trial"], {"upsample": "bilinear", "ema_decay": 0.9, "gan_mode": "lsgan"}),
    (["--recipe", "trial", "--upsample", "deconv", "--gan_mode", "vanilla", "--lr", "0.001"],
     {"upsample": "deconv", "ema_decay": 0.5, "gan_mode": "vanilla", "lr": 0.001}),
    # A typed value equal to the parser's default still wins over the recipe.
    (["--recipe", "trial", "--ema_decay", "0"], {"ema_decay": 0.0, "upsample": "bilinear"}),
])
def test_recipe_flags_are_defaults_and_typed_flags_win(trial, argv: list[str], expected: dict) -> None:
    opt = parse(*argv)
    assert {key: getattr(opt, key) for key in expected} == expected


def test_recipe_flags_are_not_marked_typed(trial) -> None:
    opt = parse("--recipe", "trial", "--lr", "0.001")
    assert {"recipe", "lr"} <= set(opt.explicit) and not {"upsample", "ema_decay", "gan_mode"} & set(opt.explicit)


def test_recipe_beats_the_demo_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    # No --dataroot: the demo's defaults (unet_128, ngf 32) apply, and a recipe goes over them.
    monkeypatch.setitem(RECIPES, "wide", Recipe(("--ngf", "48"), "for the test", "here"))
    demo = parse_options(["--gpu_ids", "-1", "--recipe", "wide"], is_train=True)
    assert (demo.ngf, demo.netG) == (48, "unet_128")


@pytest.mark.parametrize("name", list(RECIPES))
def test_every_recipe_equals_typing_its_flags(name: str) -> None:
    by_name = parse("--recipe", name).as_dict()
    typed = parse(*RECIPES[name].flags).as_dict()
    for key in ("recipe", "explicit"):
        by_name.pop(key), typed.pop(key)
    assert by_name == typed


def test_default_is_paper_with_no_flags() -> None:
    assert DEFAULT_RECIPE == "paper" and RECIPES["paper"].flags == ()
    assert parse().as_dict() == {**parse("--recipe", "paper").as_dict(), "explicit": parse().explicit}


def test_a_bad_value_in_a_recipe_is_refused_as_if_typed(monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setitem(RECIPES, "broken", Recipe(("--upsample", "cubic"), "for the test", "here"))
    with pytest.raises(SystemExit) as exit_info:
        parse("--recipe", "broken")
    assert exit_info.value.code == 2
    assert "argument --upsample: invalid choice: 'cubic'" in capsys.readouterr().err


def test_unknown_recipe_is_one_line_naming_the_known_ones(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        train_driver.main([*BASE, "--recipe", "fastest"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("train.py: error: argument --recipe: invalid choice: 'fastest'")
    assert all(f"'{name}'" in err for name in RECIPES)


def test_help_lists_every_recipe_with_its_flags() -> None:
    text = " ".join(build_parser(is_train=True).format_help().split())   # undo the line wrapping
    assert "--recipe {paper,quality}" in text
    assert "paper: the pix2pix paper's defaults: what you get without --recipe; flags: none" in text
    assert "quality: " in text and "flags: --upsample nearest --ema_decay 0.999 (see README: Quality)" in text
    for name, recipe in RECIPES.items():
        assert f"{name}: {recipe.summary}; flags: {recipe.command_line} (see {recipe.measured})" in text


def test_readme_names_each_recipe_with_its_flags() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for name, recipe in RECIPES.items():
        shown = f"`{recipe.command_line}`" if recipe.flags else "no flags"
        assert re.search(rf"^- `{name}`[^:]*: {re.escape(shown)}", readme, re.MULTILINE), name


def test_test_py_has_no_recipe() -> None:
    with pytest.raises(SystemExit):
        parse_options(["--gpu_ids", "-1", "--recipe", "quality"], is_train=False)


# -- --recipe quality end to end ------------------------------------------------------------
# Written by hand from quality's flags in options/recipes.py: update it with them.
QUALITY_UPSAMPLE, QUALITY_EMA = "nearest", 0.999


@pytest.fixture(scope="module")
def quality_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Two steps with --recipe quality, resumed from the first."""
    root = tmp_path_factory.mktemp("recipe")
    data = make_aligned_dataset(root / "data", {"train": 2, "test": 2})
    args = tiny_args(data, root / "ck") + ["--recipe", "quality", "--amp", "none", "--no_html"]
    assert train_driver.main(args + ["--max_steps", "1"]) == 0
    assert train_driver.main(args + ["--max_steps", "2", "--continue_train"]) == 0
    exp = root / "ck" / "tiny"
    return {"data": data, "root": root, "exp": exp, "args": args,
            "full": torch.load(exp / "latest.pt", weights_only=True),
            "G": torch.load(exp / "latest_net_G.pt", weights_only=True)}


def test_quality_run_records_the_recipe_and_its_flags(quality_run: dict) -> None:
    for saved in (quality_run["full"]["options"], quality_run["G"]["options"]):
        assert (saved["recipe"], saved["upsample"], saved["ema_decay"]) == ("quality", QUALITY_UPSAMPLE, QUALITY_EMA)
    assert quality_run["full"]["specs"]["G"]["fields"]["upsample"] == QUALITY_UPSAMPLE
    printed = (quality_run["exp"] / "train_opt.txt").read_text()
    assert re.search(r"^ +recipe: quality   \(typed\)$", printed, re.MULTILINE)
    assert re.search(rf"^ +upsample: {QUALITY_UPSAMPLE}$", printed, re.MULTILINE)


def test_quality_run_resumed_with_its_flags(quality_run: dict) -> None:
    full = quality_run["full"]
    assert full["state"]["step"] == 2 and full["ema"]["G"]["updates"] == 2   # the average went on


def test_resume_without_the_recipe_says_which_to_add(quality_run: dict, capsys: pytest.CaptureFixture) -> None:
    args = [a for a in quality_run["args"] if a not in ("--recipe", "quality")]
    assert train_driver.main(args + ["--max_steps", "3", "--continue_train"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.endswith("checkpoint was trained with --recipe quality; add --recipe quality to resume it")
    assert "\n" not in err
    # A typed --recipe is a deliberate choice: here it changes the decoder, which the spec check refuses.
    assert train_driver.main(args + ["--recipe", "paper", "--max_steps", "3", "--continue_train"]) == 1
    # The message names the recipe typed, not only a flag the user never typed.
    assert capsys.readouterr().err.strip().endswith(
        f"checkpoint was trained with --upsample {QUALITY_UPSAMPLE}, you asked for --upsample deconv "
        "(--recipe paper sets it; the checkpoint was trained with --recipe quality)")


def upsamplers(net: nn.Module) -> list[str]:
    return [m.mode for m in net.modules() if isinstance(m, nn.Upsample)]


def test_inference_loader_builds_the_recipes_decoder(quality_run: dict) -> None:
    opt = parse_inference_options(["--name", "tiny", "--checkpoints_dir", str(quality_run["root"] / "ck"),
                                   "--gpu_ids", "-1"], "translate.py", "test")
    loaded = load_generator(opt)
    assert loaded.spec.upsample == QUALITY_UPSAMPLE
    # resnet_6blocks doubles the resolution twice; no transposed convolution is left.
    assert upsamplers(loaded.net) == [QUALITY_UPSAMPLE] * 2
    assert not any(isinstance(m, nn.ConvTranspose2d) for m in loaded.net.modules())
    ema = quality_run["full"]["ema"]["G"]["net"]
    assert all(torch.equal(v, ema[k]) for k, v in loaded.net.state_dict().items())


def test_test_py_runs_the_recipes_generator(quality_run: dict, tmp_path: Path) -> None:
    assert test_driver.main(["--dataroot", str(quality_run["data"]), "--checkpoints_dir",
                             str(quality_run["root"] / "ck"), "--name", "tiny", "--load_size", "32", "--crop_size",
                             "32", "--num_threads", "0", "--gpu_ids", "-1", "--results_dir", str(tmp_path)]) == 0
    metrics = json.loads((tmp_path / "tiny" / "test_latest" / "metrics.json").read_text())
    assert "EMA weights" in metrics["behaviour"] and len(metrics["images"]) == 2
