"""Cross-option checks, each returning one line that names the option and what is wrong."""
from __future__ import annotations

import itertools
from typing import Callable

import argparse

from data import DATASETS, PREPROCESS_MODES, targets_problem
from data.colorization import INPUT_NC, OUTPUT_NC
from models.losses import GAN_LOSSES
from models.networks import DISCRIMINATORS, GENERATORS, generator_spec, size_multiple
from models.networks.multiscale import smallest_logit_side
from models.norms import NORMS
from options.highres import fix_global_problem
from options.validation import VALIDATION_CHECKS
from reporting.sink import display_problem

Check = Callable[[argparse.Namespace], "str | None"]


def _crop_not_above_load(opt: argparse.Namespace) -> str | None:
    mode = PREPROCESS_MODES.get(opt.preprocess)   # what each mode does: data/transforms.py
    if mode.crops and mode.uses_load_size and opt.crop_size > opt.load_size:
        return (f"--crop_size {opt.crop_size} is larger than --load_size {opt.load_size}; "
                f"with --preprocess {opt.preprocess} the crop is taken from the resized image")
    return None


def _size_fits_generator(opt: argparse.Namespace) -> str | None:
    if getattr(opt, "netG_from_checkpoint", False):
        return None  # test time: the checkpoint names the generator; checked again once loaded
    multiple = generator_spec(opt).size_multiple
    mode = PREPROCESS_MODES.get(opt.preprocess)
    if mode.crops:        # the output side is the crop
        flag, side = "--crop_size", opt.crop_size
    elif mode.uses_load_size:   # scale_width: the output width is the load size
        flag, side = "--load_size", opt.load_size
    else:
        return None  # 'none' resizes every image to a valid size
    if side % multiple == 0:
        return None
    nearest = max(multiple, round(side / multiple) * multiple)
    fitting = [e.name for e in GENERATORS if side % size_multiple(e.name) == 0]
    hint = f", or a generator that takes this size (--netG {fitting[0]})" if fitting else ""
    return (f"{flag} {side} does not fit --netG {opt.netG}, whose input side must be a multiple of "
            f"{multiple}; use {flag} {nearest}{hint}")


def _channels_match_model(opt: argparse.Namespace) -> str | None:
    if opt.model == "colorization" and (opt.input_nc, opt.output_nc) != (INPUT_NC, OUTPUT_NC):
        return (f"--model colorization maps L to ab: it needs --input_nc {INPUT_NC} --output_nc {OUTPUT_NC}, "
                f"got {opt.input_nc} and {opt.output_nc}")
    return None


def _aspect_ratio_positive(opt: argparse.Namespace) -> str | None:
    ratio = getattr(opt, "aspect_ratio", 1.0)
    return None if ratio > 0 else f"--aspect_ratio must be positive, got {ratio}"


# Number options whose range torch would otherwise refuse mid-run with a traceback (Adam's
# betas, the normal init's std), or that would silently train the wrong way (a negative loss
# weight rewards moving away from the target): option -> (accepts, what it must be).
_RANGES: dict[str, tuple[Callable[[float], bool], str]] = {
    "lr": (lambda v: v > 0, "positive"),
    "beta1": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "init_gain": (lambda v: v >= 0, "0 or more"),
    "lambda_L1": (lambda v: v >= 0, "0 or more"),
}


def _numbers_in_range(opt: argparse.Namespace) -> str | None:
    for name, (accepts, requirement) in _RANGES.items():
        value = getattr(opt, name, None)
        if value is not None and not accepts(value):
            return f"--{name} must be {requirement}, got {value:g}"
    return None


def _gradient_penalty_with_synced_bn(opt: argparse.Namespace) -> str | None:
    """The WGAN-GP penalty differentiates D's output twice; the synced batch norm's backward
    cannot (its cross-process reduction happens in a hand-written backward)."""
    if not hasattr(opt, "gan_mode"):
        return None  # test time: no D is trained
    if GAN_LOSSES.entry(opt.gan_mode).meta.get("gp_weight", 0) > 0 and NORMS.entry(opt.norm).name == "syncbatch":
        return (f"--gan_mode {opt.gan_mode} needs a double backward through D, which --norm {opt.norm} "
                "does not support; use --norm batch, instance or group with it")
    return None


def _discriminator_fits_crop(opt: argparse.Namespace) -> str | None:
    """Each stride-2 layer of a PatchGAN halves the crop, each scale of the multiscale D halves
    it again: the coarsest must still give logits (else the first step fails deep in a conv, or
    in an instance norm of one pixel)."""
    if not getattr(opt, "is_train", False) or not hasattr(opt, "netD"):
        return None
    if not PREPROCESS_MODES.get(opt.preprocess).crops:
        return None   # no crop: each sample keeps its size, checked once the dataset is read (training/sizes.py)
    spec = DISCRIMINATORS.from_options(vars(opt))
    n_layers = getattr(spec, "n_layers", None)
    if n_layers is None:   # the pixel D keeps every pixel
        return None
    num_d = getattr(spec, "num_D", 1)
    if smallest_logit_side(opt.crop_size, n_layers, num_d) >= 1:
        return None
    step = generator_spec(opt).size_multiple   # a crop the generator takes too
    smallest = next(s for s in itertools.count(step, step) if smallest_logit_side(s, n_layers, num_d) >= 1)
    layers = f"--n_layers_D {n_layers}" if opt.netD != "basic" else "3 layers"
    scales = f" --num_D {num_d}" if opt.netD == "multiscale" else ""
    what = "the coarsest scale of a" if num_d > 1 else "a"
    return (f"--netD {opt.netD}{scales}: {what} {opt.crop_size} px crop is too small for a PatchGAN of {layers} "
            f"(each halves it; no logits would be left); use --crop_size {smallest} or more, or fewer layers"
            + (" or a lower --num_D" if num_d > 1 else ""))


def _training_data_has_targets(opt: argparse.Namespace) -> str | None:
    """A mode without targets fails at the first step (no "B" to compare with), after the folder
    is written; refused here. Shards name their mode in their index: train.py checks them once read."""
    if not getattr(opt, "is_train", False):
        return None
    return targets_problem(DATASETS.get(opt.dataset_mode), f"--dataset_mode {opt.dataset_mode}")


CHECKS: list[Check] = [_training_data_has_targets, _crop_not_above_load, _size_fits_generator, _channels_match_model,
                       _aspect_ratio_positive, _numbers_in_range, _gradient_penalty_with_synced_bn,
                       _discriminator_fits_crop, fix_global_problem]


CHECKS += VALIDATION_CHECKS   # --val_freq, --val_fid, --best_metric (options/validation.py)
CHECKS.append(display_problem)   # a display switched on without its package (reporting/sink.py)


def first_problem(opt: argparse.Namespace) -> str | None:
    for check in CHECKS:
        problem = check(opt)
        if problem:
            return problem
    return None
