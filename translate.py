"""Translate single images or a folder with a trained generator.

``python translate.py --name edges2shoes_pix2pix --input sketches/ --output out/``

The network's options (netG, ngf, norm, channels, model) come from the checkpoint; the
network flags are only needed for reference-implementation files (``<epoch>_net_G.pth``),
which carry none. Any image size and mode is accepted; each result has its input's size and
name (``.png``).
"""
from __future__ import annotations

# Before anything imports torch: OpenMP threads that spin while waiting collapse on small or
# shared CPUs (measured 16x slower), so prefer passive waiting unless the user set a policy.
from util.omp_env import prefer_passive_omp_wait

prefer_passive_omp_wait()

import argparse
import logging
import sys
from pathlib import Path
from typing import Sequence

import torch

from data import DataError
from data.image_io import IMAGE_EXTENSIONS, open_image
from models import MODELS
from models.batchnorm import BN_EVAL_MODES
from models.load_generator import find_generator, load_into, options_for
from models.networks import GENERATORS, build_generator, size_multiple
from models.norms import NORMS, norm_spec
from inference.translator import CODECS, FIT_MODES, Translator, set_inference_behaviour
from options.base import HelpFormatter, OneLineParser, choices_help, gpu_list, non_negative_int, positive_int
from options.defaults import MODEL_DEFAULTS
from options.parse import explicit_options
from engine.checkpoint import CheckpointError
from engine.distributed import single_process_runtime
from reporting.logs import setup_logging
from inference.files import TranslateInputError, list_jobs

log = logging.getLogger("translate")

# Batch norm modes that need nothing but the image itself ("precise" needs training data).
_BN_EVAL = [name for name in BN_EVAL_MODES.choices() if name != "precise"]


def build_parser() -> OneLineParser:
    p = OneLineParser(prog="translate.py", formatter_class=HelpFormatter,
                      description="Translate images with a trained generator.")
    p.add_argument("--name", required=True, help="experiment name: the folder under --checkpoints_dir")
    p.add_argument("--input", required=True, type=Path, help="an image file or a folder of images (recursive)")
    p.add_argument("--output", required=True, type=Path, help="folder for the results (<input stem>.png)")
    p.add_argument("--checkpoints_dir", default="./checkpoints", help="where experiment folders live")
    p.add_argument("--epoch", default="latest", help="which checkpoint: latest or an epoch number")
    p.add_argument("--load_iter", type=non_negative_int, default=0, help="if > 0, load iter_N instead of --epoch")
    p.add_argument("--gpu_ids", type=gpu_list, default=None, help="GPU id, e.g. 0; -1 for the CPU. Default: 0 "
                                                                  "when a GPU is present")
    p.add_argument("--seed", type=int, default=0, help="seed of the dropout noise (paper mode)")
    p.add_argument("--verbose", action="store_true", help="debug logs")

    g = p.add_argument_group("network (read from the checkpoint; needed only for reference .pth files)")
    g.add_argument("--model", default="pix2pix", choices=MODELS.choices(), help=choices_help(MODELS))
    g.add_argument("--netG", default="unet_256", choices=GENERATORS.choices(), help=choices_help(GENERATORS))
    g.add_argument("--norm", default="batch", choices=NORMS.choices(), help=choices_help(NORMS))
    g.add_argument("--ngf", type=positive_int, default=64, help="generator filters in the last conv layer")
    g.add_argument("--input_nc", type=positive_int, default=3, help="input channels (3 RGB, 1 gray)")
    g.add_argument("--output_nc", type=positive_int, default=3, help="output channels (3 RGB, 1 gray)")
    g.add_argument("--no_dropout", action="store_true", help="the generator has no dropout")

    g = p.add_argument_group("sizes and test-time behaviour")
    g.add_argument("--load_size", type=positive_int, default=None,
                   help="resize every image to load_size x load_size first, as the reference's test.py "
                        "does (default: keep each image's size, fitted per --fit)")
    g.add_argument("--fit", default="resize", choices=FIT_MODES.choices(), help=choices_help(FIT_MODES))
    g.add_argument("--eval", action="store_true",
                   help="eval mode: batch norm per --bn_eval, no dropout. Without it G runs as in the paper "
                        "(and test.py): batch statistics of each image, dropout on")
    g.add_argument("--bn_eval", default="running", choices=_BN_EVAL,
                   help=choices_help(BN_EVAL_MODES, "with --eval, how batch norm layers normalize:"))
    g.add_argument("--dropout", default=None, choices=["on", "off"],
                   help="dropout: default on without --eval (paper), off with --eval")
    g.add_argument("--skip_bad_images", action="store_true", help="warn about unreadable images and go on")
    return p


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = build_parser()
    first, _ = parser.parse_known_args(argv)
    # Per-model defaults, as train.py and test.py apply them (colorization: 1 -> 2 channels).
    known = {a.dest for a in parser._actions}
    parser.set_defaults(**{k: v for k, v in MODEL_DEFAULTS.get(first.model, {}).items() if k in known})
    opt = parser.parse_args(argv)
    opt.explicit = explicit_options(parser, argv)
    if opt.gpu_ids is None:
        opt.gpu_ids = [0] if torch.cuda.is_available() else []
    if opt.gpu_ids and not torch.cuda.is_available():
        parser.error(f"--gpu_ids {','.join(map(str, opt.gpu_ids))} asks for a GPU but CUDA is not available; "
                     "use --gpu_ids -1 for the CPU")
    return opt


def run(opt: argparse.Namespace) -> int:
    label = f"iter_{opt.load_iter}" if opt.load_iter > 0 else str(opt.epoch)
    jobs = list_jobs(opt.input, opt.output, IMAGE_EXTENSIONS)
    saved = find_generator(Path(opt.checkpoints_dir) / opt.name, label)
    # The checkpoint decides the network (and the model, hence how images are encoded).
    from_ckpt = options_for(opt, saved)
    if saved.options and "model" in saved.options and "model" not in opt.explicit:
        from_ckpt["model"] = saved.options["model"]
    opt = argparse.Namespace(**{**vars(opt), **from_ckpt})

    device = single_process_runtime(opt.gpu_ids).device
    net = build_generator(opt.netG, opt.input_nc, opt.output_nc, opt.ngf, norm_spec(opt.norm),
                          dropout=not opt.no_dropout)
    try:
        load_into(net, saved, opt)
    except CheckpointError as err:
        message = str(err)
        raise CheckpointError(message if str(saved.path) in message else f"{saved.path}: {message}") from None
    net.to(device)
    behaviour = set_inference_behaviour(net, opt.eval, opt.bn_eval, opt.dropout)
    codec = CODECS.get(MODELS.entry(opt.model).meta.get("translate_io", "rgb"))
    translate = Translator(net, device, codec, opt.input_nc, opt.output_nc, size_multiple(opt.netG),
                           fit=opt.fit, load_size=opt.load_size)
    log.info("%s: --netG %s --ngf %d --norm %s, %d -> %d channels, %s, on %s", saved.path, opt.netG, opt.ngf,
             opt.norm, opt.input_nc, opt.output_nc, behaviour, device)

    torch.manual_seed(opt.seed)
    written = 0
    for job in jobs:
        try:
            result = translate(open_image(job.source), str(job.source))
        except DataError as err:
            if not opt.skip_bad_images:
                raise
            log.warning("skipping bad image: %s", err)
            continue
        job.target.parent.mkdir(parents=True, exist_ok=True)
        result.save(job.target)
        written += 1
        log.debug("%s -> %s", job.source, job.target)
    log.info("wrote %d image(s) to %s", written, opt.output)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    opt = parse(argv)
    setup_logging(verbose=opt.verbose)
    try:
        return run(opt)
    except (TranslateInputError, DataError, CheckpointError, ValueError) as err:
        print(f"translate.py: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
