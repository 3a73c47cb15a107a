"""Translate single images or a folder with a trained generator.

``python translate.py --name edges2shoes_pix2pix --input sketches/ --output out/``

The network's options (netG, ngf, norm, channels, model) come from the checkpoint (a
reference-implementation file's, ``<epoch>_net_G.pth``, are read from its weights); typed
network flags must agree with it. Any image size and mode is accepted; each result has its input's size and
name (``.png``; ``.tif`` for 16-bit colour and for channel counts other than 1 and 3, see
reporting/result_files.py), at the input's bit depth unless ``--output_bits`` says otherwise.
``--onnx model.onnx`` runs a file written by export.py through onnxruntime.
"""
from __future__ import annotations

# Before anything imports torch: how OpenMP threads wait (spin on a quiet machine, sleep on an
# oversubscribed one; util/omp_env.py), unless the user set a policy.
from util.omp_env import set_omp_wait_policy

set_omp_wait_policy()

import argparse
import logging
import sys
from pathlib import Path
from typing import Sequence

import torch

from data import DataError
from data.image_io import IMAGE_EXTENSIONS, read_header, set_max_image_pixels
from data.orientation import exif_orientation, upright
from data.pixels import bits_of, read_pixels
from inference.files import Job, list_jobs
from inference.generator import load_generator, translator_for
from inference.onnx_model import OnnxSpec, onnx_translator
from inference.translator import Translator
from options.base import Options, add_max_image_pixels_option, add_skip_bad_images_option, positive_int
from options.inference import add_fit_option, checkpoint_option_names
from options.inference import parse_inference_options
from options.own_data import add_output_bits_option
from reporting.logs import setup_logging
from reporting.result_files import output_bits, save_result
from util.errors import OptionError, UserError

log = logging.getLogger("translate")


def add_translate_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("files and sizes")
    g.add_argument("--input", required=True, type=Path, help="an image file or a folder of images (recursive)")
    g.add_argument("--output", required=True, type=Path, help="folder for the results (<input stem>.png)")
    g.add_argument("--onnx", type=Path, default=None,
                   help="run this file written by export.py through onnxruntime instead of a checkpoint "
                        "(no torch network is built; the file fixes the network and its eval-mode behaviour, so "
                        "--name, --epoch, the network flags and a --bn_eval/--dropout other than the file's are "
                        "refused)")
    g.add_argument("--load_size", type=positive_int, default=None,
                   help="resize every image to load_size x load_size first, as the reference's test.py "
                        "does (default: keep each image's size, fitted per --fit; --load_size replaces --fit)")
    add_fit_option(g)
    g.add_argument("--exif_orientation", default="apply", choices=("apply", "ignore"),
                   help="apply: turn each photo as its EXIF orientation tag says (a phone's portrait photo is "
                        "stored sideways), as image viewers show it, and write the result upright; "
                        "ignore: the stored pixels, as test.py reads data sets (default: %(default)s)")
    add_skip_bad_images_option(g)
    add_max_image_pixels_option(g)
    add_output_bits_option(g)


def parse(argv: Sequence[str] | None) -> Options:
    opt = parse_inference_options(argv, "translate.py", "Translate images with a trained generator.",
                                  extend=add_translate_options, name_required=False)
    if opt.name is None and opt.onnx is None:
        print("translate.py: error: give --name (a checkpoint) or --onnx (an exported file) (see --help)",
              file=sys.stderr)
        sys.exit(2)
    return opt


def refuse_unhonoured(opt: Options, spec: OnnxSpec) -> None:
    """Refuse, in one line, typed options an exported file cannot honour: it holds one network,
    frozen in eval mode without dropout and with the batch norm statistics it was exported with.
    (Left untyped, they are simply the file's.)"""
    where = f"{opt.onnx} holds --netG {spec.netG}, {spec.input_nc} -> {spec.output_nc} channels, {spec.norm_behaviour}"
    picked = sorted(checkpoint_option_names() & set(opt.explicit))
    if picked:
        typed = ", ".join(f"--{name}" for name in picked)
        raise OptionError(f"{typed}: --onnx runs the network the file holds ({where}); leave {typed} out, or run "
                          "the checkpoint with translate.py --name (no --onnx), or export it again with export.py")
    if "dropout" in opt.explicit and opt.dropout == "on":
        raise OptionError(f"--dropout on: {where} (an exported graph draws no dropout masks); run the checkpoint "
                          "with translate.py --name (no --onnx), or leave --dropout out")
    if "bn_eval" in opt.explicit and spec.bn_eval is not None and opt.bn_eval != spec.bn_eval:
        raise OptionError(f"--bn_eval {opt.bn_eval}: {opt.onnx} was exported with --bn_eval {spec.bn_eval} ({where}); "
                          f"export it again with export.py --bn_eval {opt.bn_eval}, or leave --bn_eval out")


def build_translator(opt: Options) -> Translator:
    if opt.onnx is not None:
        translate = onnx_translator(opt.onnx, fit=opt.fit, load_size=opt.load_size)
        refuse_unhonoured(opt, translate.net.spec)
        log.info("%s: onnxruntime on the CPU, %s, %s", opt.onnx, translate.net.spec.norm_behaviour,
                 translate.fitting())
        return translate
    loaded = load_generator(opt)
    translate = translator_for(loaded, fit=opt.fit, load_size=opt.load_size)
    log.info("%s, %s", loaded.describe(), translate.fitting())
    return translate


def translate_file(translate: Translator, source: Path, target: Path, bits_option: str, turn: bool = True) -> Path:
    """Translate one file, turned upright by its EXIF tag when ``turn``; returns the file
    written (``target`` or, for TIFF and 16-bit colour results, its .tif)."""
    pixels = read_pixels(source, translate.read_channels)
    if turn:
        pixels = upright(pixels, exif_orientation(source))
    result = translate.result(pixels, str(source))
    written, _ = save_result(result, target.with_suffix(""), output_bits(bits_option, bits_of(pixels)))
    return written


def checked_jobs(jobs: list[Job], translate: Translator, skip_bad: bool) -> list[Job]:
    """Every input's header (an empty file, no image, over the pixel limit) and fitted size
    checked before any result is written: a bad file found late would leave earlier results
    of this run replacing those of an earlier one. With ``skip_bad`` bad files are left out."""
    kept = []
    for job in jobs:
        try:
            width, height = read_header(job.source)
            translate.check_size(height, width, str(job.source))
        except DataError as err:
            if not skip_bad:
                raise DataError(f"{err} (nothing was written; --skip_bad_images leaves such files out)") from None
            log.warning("skipping bad image: %s", err)
            continue
        kept.append(job)
    return kept


def run(opt: Options) -> int:
    set_max_image_pixels(opt.max_image_pixels)
    jobs = list_jobs(opt.input, opt.output, IMAGE_EXTENSIONS)
    translate = build_translator(opt)
    jobs = checked_jobs(jobs, translate, opt.skip_bad_images)
    written = 0
    for job in jobs:
        # Reseeded per image, as serve.py does per request: in the paper's mode (dropout on) a
        # result then depends on the image, the checkpoint and --seed only, not on which other
        # images share --input.
        torch.manual_seed(opt.seed)
        try:
            target = translate_file(translate, job.source, job.target, opt.output_bits,
                                    turn=opt.exif_orientation == "apply")
        except DataError as err:
            if not opt.skip_bad_images:
                raise
            log.warning("skipping bad image: %s", err)
            continue
        written += 1
        log.debug("%s -> %s", job.source, target)
    log.info("wrote %d image(s) to %s", written, opt.output)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    opt = parse(argv)
    setup_logging(verbose=opt.verbose)
    try:
        return run(opt)
    except UserError as err:
        print(f"translate.py: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
