"""Parse the command line once, apply per-model (and demo) defaults, validate, freeze."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable, Mapping, Sequence

import torch

from options.architecture import add_architecture_options
from options.base import HelpFormatter, OneLineParser, Options, add_base_options
from options.defaults import DEMO_DEFAULTS, MODEL_DEFAULTS
from options.recipes import RECIPES, add_recipe_option
from options.shards import add_shard_options
from options.speed import add_speed_options
from options.test import add_test_options
from options.train import add_train_options
from options.validation import add_validation_options
from options.validate import first_problem

DEMO_ROOT = Path(__file__).resolve().parent.parent / "datasets" / "demo"


def build_parser(is_train: bool) -> OneLineParser:
    prog = "train.py" if is_train else "test.py"
    parser = OneLineParser(prog=prog, formatter_class=HelpFormatter,
                           description="Train pix2pix." if is_train else "Run a trained generator.")
    add_base_options(parser)
    if is_train:
        add_recipe_option(parser)
    add_architecture_options(parser)
    (add_train_options if is_train else add_test_options)(parser)
    if is_train:
        add_validation_options(parser)
    add_speed_options(parser, is_train)
    add_shard_options(parser)
    return parser


def option_names(parser: argparse.ArgumentParser) -> set[str]:
    """The destination names of every option of ``parser`` that holds a value (not --help).

    argparse has no public list of a parser's options, so this reads its private ``_actions``
    (unchanged since Python 2.7), here and nowhere else; tests/test_private_apis.py fails
    loudly if a Python release changes it."""
    return {action.dest for action in parser._actions
            if action.dest != argparse.SUPPRESS and action.default != argparse.SUPPRESS}


_UNTYPED = object()


def explicit_options(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> list[str]:
    """The options the user typed (as opposed to defaults), e.g. so that test.py takes the
    architecture from a checkpoint unless told otherwise."""
    names = option_names(parser)
    # argparse fills in a default only for names the namespace does not hold yet: one that
    # holds them all ends up changed exactly where the command line set a value.
    untouched = argparse.Namespace(**dict.fromkeys(names, _UNTYPED))
    typed, _ = parser.parse_known_args(argv, namespace=untouched)
    return sorted(name for name in names if getattr(typed, name) is not _UNTYPED)


def _apply_defaults(parser: argparse.ArgumentParser, defaults: dict) -> None:
    known = option_names(parser)
    parser.set_defaults(**{k: v for k, v in defaults.items() if k in known})


def apply_model_defaults(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Make the typed (or default) --model's MODEL_DEFAULTS the parser's defaults; returns the
    first, partial parse (e.g. to see whether --dataroot was given)."""
    first, _ = parser.parse_known_args(argv)
    _apply_defaults(parser, MODEL_DEFAULTS.get(first.model, {}))
    return first


def apply_recipe(parser: argparse.ArgumentParser, name: str) -> None:
    """Make recipe ``name``'s flags the parser's defaults, so that typed flags still win. The
    parser itself reads the flags: a recipe's value is type-checked like a typed one."""
    flags = list(RECIPES[name].flags)
    values = parser.parse_args(flags)
    _apply_defaults(parser, {key: getattr(values, key) for key in explicit_options(parser, flags)})


def resolve_gpu_ids(parser: argparse.ArgumentParser, opt: argparse.Namespace) -> None:
    """No --gpu_ids: GPU 0 when CUDA is there, else the CPU; a GPU asked for without CUDA is an error."""
    if opt.gpu_ids is None:
        opt.gpu_ids = [0] if torch.cuda.is_available() else []
    if opt.gpu_ids and not torch.cuda.is_available():
        parser.error(f"--gpu_ids {','.join(map(str, opt.gpu_ids))} asks for a GPU but CUDA is not available; "
                     "use --gpu_ids -1 for the CPU")


def parse_options(argv: Sequence[str] | None, is_train: bool,
                  extend: Callable[[argparse.ArgumentParser], None] | None = None) -> Options:
    parser = build_parser(is_train)
    if extend is not None:
        extend(parser)
    first = apply_model_defaults(parser, argv)
    use_demo = first.dataroot is None
    if use_demo:
        _apply_defaults(parser, DEMO_DEFAULTS)
    if is_train:   # after the demo's defaults: a recipe is the user's choice
        apply_recipe(parser, first.recipe)
    opt = parser.parse_args(argv, namespace=Options())

    opt.explicit = explicit_options(parser, argv)
    opt.is_train = is_train
    opt.use_demo = use_demo
    if use_demo:
        opt.dataroot = str(DEMO_ROOT)
    if opt.load_size is None:
        opt.load_size = 286 if is_train else opt.crop_size
    resolve_gpu_ids(parser, opt)
    if opt.suffix:
        try:
            opt.name = f"{opt.name}_{opt.suffix.format(**vars(opt))}"
        except (KeyError, IndexError, ValueError) as err:
            parser.error(f"--suffix '{opt.suffix}' names an unknown option or is malformed ({err})")
    # At test time the checkpoint names the generator, so the size check waits for it: an untyped
    # --netG comes from it, and a typed one that contradicts it is that error, not the size's.
    opt.netG_from_checkpoint = not is_train
    # A resume's cross-option checks wait for its checkpoint (options/train.resume_options): the
    # options left untyped are the checkpoint's, and checking the parser's defaults for them
    # would refuse a valid resume (a typed --crop_size 32 against the default --netG unet_256).
    problem = None if is_train and opt.continue_train else first_problem(opt)
    if problem:
        parser.error(problem)
    return opt.freeze()


def format_options(opt: Options, resolved: Mapping[str, str] | None = None) -> str:
    """The options in force, one per line (train_opt.txt); those typed on the command line are
    marked, the others came from defaults (per model, demo, or the parser's own). ``resolved``:
    what a requested value turned into at run time (``amp: auto -> bf16 ...``), shown beside it;
    a key that is no option (how OpenMP threads wait) gets a line of its own."""
    typed = set(getattr(opt, "explicit", ()))
    resolved = dict(resolved or {})
    values = {**{key: value for key, value in resolved.items() if key not in opt.as_dict()}, **opt.as_dict()}
    lines = ["----------------- Options ---------------"]
    for key, value in sorted(values.items()):
        shown = f"{value} -> {resolved[key]}" if key in resolved and key in opt.as_dict() else value
        lines.append(f"{key:>25}: {shown}" + ("   (typed)" if key in typed else ""))
    lines.append("----------------- End -------------------")
    return "\n".join(lines) + "\n"
