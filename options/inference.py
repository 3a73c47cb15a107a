"""Options of the commands that run a trained generator outside a dataset: translate.py,
serve.py and export.py.

They share, with train.py and test.py, the per-model defaults, the GPU defaulting and the
load label (options/parse.py), and with test.py the norm-behaviour group
(options/norm_behaviour.py): a flag added there reaches every command that runs G.
Each command adds its own flags through ``extend``.
"""
from __future__ import annotations

import argparse
from typing import Callable, Sequence

from options.architecture import add_architecture_options
from options.base import (HelpFormatter, OneLineParser, Options, add_experiment_options, add_load_options,
                          add_model_option, add_model_suffix_option, choices_help)
from inference.translator import FIT_HELP, FIT_MODES
from options.norm_behaviour import add_norm_behaviour_options, standalone_bn_modes
from options.parse import apply_model_defaults, explicit_options, resolve_gpu_ids


def add_checkpoint_options(p: argparse.ArgumentParser, name_required: bool = True) -> None:
    g = p.add_argument_group("checkpoint")
    add_experiment_options(g, name_default=None, name_required=name_required)
    add_load_options(g)
    add_model_suffix_option(g)


def add_fit_option(g: argparse._ArgumentGroup) -> None:
    """How an image of any size meets the generator's side multiple (translate.py, serve.py)."""
    g.add_argument("--fit", default=None, choices=FIT_MODES.choices(), help=choices_help(FIT_MODES) + FIT_HELP)


def add_network_options(p: argparse.ArgumentParser) -> None:
    g = add_architecture_options(p, with_discriminator=False,
                                 title="network (read from the checkpoint, or from a reference .pth file's weights; a typed flag must agree with it)")
    add_model_option(g)


# Options that do not pick or shape the network, though they sit in the checkpoint group.
_NOT_CHECKPOINT = frozenset({"checkpoints_dir", "gpu_ids", "seed", "verbose", "help"})


def checkpoint_option_names() -> frozenset[str]:
    """The options that pick a checkpoint or describe its network (--name, --epoch, --netG, --model,
    --no_ema, ...): what an exported file has already fixed (translate.py --onnx refuses them)."""
    p = argparse.ArgumentParser(add_help=False)
    add_checkpoint_options(p, name_required=False)
    add_network_options(p)
    return frozenset(a.dest for a in p._actions) - _NOT_CHECKPOINT | {"no_ema"}


def build_inference_parser(prog: str, description: str, name_required: bool = True,
                           frozen: bool = False) -> OneLineParser:
    p = OneLineParser(prog=prog, formatter_class=HelpFormatter, description=description)
    add_checkpoint_options(p, name_required)
    add_network_options(p)
    add_norm_behaviour_options(p, standalone_bn_modes(), frozen=frozen)
    return p


def parse_inference_options(argv: Sequence[str] | None, prog: str, description: str,
                            extend: Callable[[argparse.ArgumentParser], None] | None = None,
                            name_required: bool = True, frozen: bool = False) -> Options:
    """Parse once with the per-model defaults applied, as train.py and test.py do.

    A frozen command (export.py) gets ``eval`` True and ``dropout`` "off" as plain values, so
    the code that sets G's behaviour is the same for every command."""
    parser = build_inference_parser(prog, description, name_required, frozen)
    if extend is not None:
        extend(parser)
    apply_model_defaults(parser, argv)
    opt = parser.parse_args(argv, namespace=Options())
    opt.explicit = explicit_options(parser, argv)
    if frozen:
        opt.eval, opt.dropout = True, "off"
    resolve_gpu_ids(parser, opt)
    return opt.freeze()
