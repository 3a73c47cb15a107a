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

from models import MODELS
from options.architecture import add_architecture_options
from options.base import HelpFormatter, OneLineParser, Options, choices_help, gpu_list, non_negative_int
from options.norm_behaviour import STANDALONE_BN_MODES, add_norm_behaviour_options
from options.parse import apply_model_defaults, explicit_options, resolve_gpu_ids


def add_checkpoint_options(p: argparse.ArgumentParser, name_required: bool = True) -> None:
    g = p.add_argument_group("checkpoint")
    g.add_argument("--name", required=name_required, default=None,
                   help="experiment name: the folder under --checkpoints_dir")
    g.add_argument("--checkpoints_dir", default="./checkpoints", help="where experiment folders live")
    g.add_argument("--epoch", default="latest", help="which checkpoint: latest or an epoch number")
    g.add_argument("--load_iter", type=non_negative_int, default=0, help="if > 0, load iter_N instead of --epoch")
    g.add_argument("--gpu_ids", type=gpu_list, default=None,
                   help="GPU id, e.g. 0; -1 for the CPU. Default: 0 when a GPU is present")
    g.add_argument("--seed", type=int, default=0, help="seed of the dropout noise (paper mode)")
    g.add_argument("--verbose", action="store_true", help="debug logs")


def add_network_options(p: argparse.ArgumentParser) -> None:
    g = add_architecture_options(p, with_discriminator=False,
                                 title="network (read from the checkpoint; needed only for reference .pth files)")
    g.add_argument("--model", default="pix2pix", choices=MODELS.choices(), help=choices_help(MODELS))


def build_inference_parser(prog: str, description: str, name_required: bool = True,
                           frozen: bool = False) -> OneLineParser:
    p = OneLineParser(prog=prog, formatter_class=HelpFormatter, description=description)
    add_checkpoint_options(p, name_required)
    add_network_options(p)
    add_norm_behaviour_options(p, STANDALONE_BN_MODES, frozen=frozen)
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
