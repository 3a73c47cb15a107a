"""The validation and best-checkpoint options of train.py, their cross-checks, and what they
configure (the validation split and ``inference.validation.ValidationConfig``).

Validation reads the split as test.py reads it by default (``--load_size`` = ``--crop_size``:
the whole resized image, no flips, test.py's crops for the same ``--seed``) and runs G as
test.py runs it, so its figures are those of one test.py command: :func:`reproducing_test_command`, logged
at the start of the run. :func:`validation_settings` is what the best checkpoint records, so a
resume that validates otherwise starts a new best instead of comparing unlike figures."""
from __future__ import annotations

import argparse
import logging
from dataclasses import replace
from pathlib import Path
import shlex
from typing import Any

from torch.utils.data import Dataset

from data import DataError, create_dataset, split_problem
from data.config import DataConfig, is_url
from engine.best import BEST_LABEL, BestKeeper, read_best
from engine.distributed import Runtime, gather_to_all
from engine.saver import Saver
from inference.split_inference import training_inputs
from inference.validation import ValidationConfig, Validator
from inference.validation_hook import ReportMetrics, ValidationHook
from models.batchnorm import BN_EVAL_MODES
from models.precise_bn import PRECISE_BATCHES
from options.base import OneLineParser, add_base_options, non_negative_int, positive_int
from options.configs import data_config
from options.norm_behaviour import add_norm_behaviour_options
from options.test import add_test_options
from reporting.fid import extractor_path
from reporting.metrics import METRICS, SET, metric_names

log = logging.getLogger("train")

BEST_METRICS = [m.lower() for m in metric_names()]
SET_METRICS = [m.lower() for m in metric_names(SET)]   # need --val_fid
# --best_metric none: no best checkpoint (a resume takes --best_metric from its checkpoint
# unless typed, so switching it off needs a value of its own).
NO_BEST = "none"


def add_validation_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("validation and the best checkpoint")
    g.add_argument("--val_freq", type=non_negative_int, default=0,
                   help="validate every N samples, like the other *_freq options (0: not by samples)")
    g.add_argument("--val_epoch_freq", type=non_negative_int, default=0,
                   help="validate at the end of every N epochs (0: not by epochs)")
    g.add_argument("--val_phase", default="val", help="subfolder of --dataroot to validate on")
    g.add_argument("--val_max_images", type=positive_int, default=None,
                   help="validate on the first N images of the split only (default: all)")
    g.add_argument("--val_fid", action="store_true",
                   help="also FID and KID of the validation set (the real images' statistics are computed "
                        "once per run and cached in the experiment folder)")
    goals = ", ".join(f"{e.name.lower()} {e.obj.goal}" for e in METRICS)
    g.add_argument("--best_metric", default=None, choices=[*BEST_METRICS, NO_BEST],
                   help=f"keep best.pt / best_net_G.pt, the checkpoint that scored best on this validation "
                        f"metric ({goals} is better; {', '.join(SET_METRICS)} need --val_fid); use it with "
                        f"--epoch best. {NO_BEST}: keep none (what a resume types to stop keeping one)")
    g.add_argument("--early_stop", type=non_negative_int, default=0, metavar="N",
                   help="end the run (as a finished one: 'latest' saved, exit 0) once N validations in a row "
                        "have not beaten --best_metric's best (a tie does not); a resume counts on. 0: off")
    # How G runs when validated: the flags test.py has, with the same meaning.
    group = add_norm_behaviour_options(p, BN_EVAL_MODES.choices())
    group.add_argument("--bn_precise_batches", type=positive_int, default=PRECISE_BATCHES,
                       help="with --eval --bn_eval precise: training batches the statistics are measured on")


def validating(opt: argparse.Namespace) -> bool:
    return bool(getattr(opt, "val_freq", 0) or getattr(opt, "val_epoch_freq", 0))


def best_metric(opt: argparse.Namespace) -> str | None:
    """The metric the best checkpoint is chosen by, or None (no --best_metric, or none)."""
    metric = getattr(opt, "best_metric", None)
    return None if metric in (None, NO_BEST) else metric


def _best_needs_validation(opt: argparse.Namespace) -> str | None:
    metric = best_metric(opt)
    if metric is None:
        return None
    if not validating(opt):
        return f"--best_metric {metric} needs validation: add --val_freq N (samples) or --val_epoch_freq N (epochs)"
    if metric in SET_METRICS and not opt.val_fid:
        return f"--best_metric {metric} needs --val_fid (FID and KID are measured only with it)"
    return None


def _val_fid_needs_validation(opt: argparse.Namespace) -> str | None:
    if getattr(opt, "val_fid", False) and not validating(opt):
        return "--val_fid needs validation: add --val_freq N (samples) or --val_epoch_freq N (epochs)"
    return None


def _early_stop_needs_best(opt: argparse.Namespace) -> str | None:
    n = getattr(opt, "early_stop", 0)
    if not n:
        return None
    if not validating(opt):
        return (f"--early_stop {n} needs validation: add --val_freq N (samples) or --val_epoch_freq N (epochs), "
                "and --best_metric")
    if best_metric(opt) is None:
        return (f"--early_stop {n} needs --best_metric (the metric whose best it watches"
                f"{'' if opt.best_metric is None else ', not none'})")
    return None


VALIDATION_CHECKS = [_best_needs_validation, _val_fid_needs_validation, _early_stop_needs_best]


def split_data_config(opt: argparse.Namespace, phase: str) -> DataConfig:
    """A split as test.py reads it by default: ``--load_size`` is ``--crop_size`` (test.py's
    default; the training --load_size would score seeded crops of larger images, not whole
    images), no flips, every image (test.py's --max_dataset_size is unset)."""
    return replace(data_config(opt, phase=phase), load_size=opt.crop_size, no_flip=True, max_dataset_size=None)


def val_data_config(opt: argparse.Namespace) -> DataConfig:
    return split_data_config(opt, opt.val_phase)


def val_folder_problem(opt: argparse.Namespace) -> str | None:
    """A missing split is an error, not a silent fallback: validation was asked for. Where a
    split lives is the dataset mode's own (a folder, A and B folders, a shard index)."""
    problem = split_problem(opt.dataset_mode, opt.dataroot, opt.val_phase)
    if problem is None:
        return None
    flag = "--val_freq" if opt.val_freq else "--val_epoch_freq"
    return (f"{flag}: no validation split '{opt.val_phase}' for --dataset_mode {opt.dataset_mode} ({problem}); "
            "make one as the training split is made, or name another split of --dataroot with --val_phase")


def validation_settings(opt: argparse.Namespace, count: int) -> dict[str, Any]:
    """What decides validation's figures, by test.py's option names: recorded with the best
    checkpoint, which is compared only with figures of the same settings."""
    eval_mode = bool(opt.eval)
    dataroot = opt.dataroot if is_url(opt.dataroot) else str(Path(opt.dataroot).resolve())
    return {"dataroot": dataroot, "phase": opt.val_phase, "num_test": count,
            "dataset_mode": opt.dataset_mode, "preprocess": opt.preprocess, "crop_size": opt.crop_size,
            "seed": opt.seed, "batch_size": opt.batch_size, "eval": eval_mode,
            "bn_eval": opt.bn_eval if eval_mode else None,
            "dropout": opt.dropout or ("off" if eval_mode else "on"), "no_ema": bool(opt.no_ema),
            "bn_precise_batches": opt.bn_precise_batches if eval_mode and opt.bn_eval == "precise" else None}


def _test_defaults() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="test.py")
    add_base_options(parser)
    add_test_options(parser)
    return parser


def tested_checkpoint(opt: argparse.Namespace) -> str:
    """The --epoch of the logged test.py command: ``best`` where one is kept (--best_metric),
    else ``latest``, the only checkpoint such a run is sure to have (it holds the weights of
    the last validation when that ran at the last step)."""
    return BEST_LABEL if best_metric(opt) else "latest"


def reproducing_test_command(opt: argparse.Namespace, count: int) -> str:
    """The test.py command whose metrics.json holds exactly the figures validation records for
    :func:`tested_checkpoint` (every per-image mean, and FID/KID with --val_fid): test.py's
    defaults where they are validation's, the rest typed."""
    defaults = _test_defaults()
    flags = ["--dataroot", opt.dataroot, "--name", opt.name, "--epoch", tested_checkpoint(opt), "--phase", opt.val_phase,
             "--num_test", str(count)]
    for name in ("checkpoints_dir", "dataset_mode", "preprocess", "crop_size", "seed", "batch_size"):
        if getattr(opt, name) != defaults.get_default(name):
            flags += [f"--{name}", str(getattr(opt, name))]
    if opt.eval:
        flags.append("--eval")
        if opt.bn_eval != defaults.get_default("bn_eval"):
            flags += ["--bn_eval", opt.bn_eval]
        if opt.bn_eval == "precise" and opt.bn_precise_batches != defaults.get_default("bn_precise_batches"):
            flags += ["--bn_precise_batches", str(opt.bn_precise_batches)]
    if opt.dropout is not None:
        flags += ["--dropout", opt.dropout]
    flags += ["--no_ema"] * bool(opt.no_ema) + ["--fid"] * bool(opt.val_fid)
    return shlex.join(["python", "test.py", *flags])


def validation_config(opt: argparse.Namespace) -> ValidationConfig:
    return ValidationConfig(eval_mode=opt.eval, bn_eval=opt.bn_eval, dropout=opt.dropout, use_ema=not opt.no_ema,
                            fid=opt.val_fid, max_images=opt.val_max_images, batch_size=opt.batch_size,
                            seed=opt.seed, precise_batches=opt.bn_precise_batches)


def validation_split(opt: argparse.Namespace) -> Dataset | None:
    """The validation split, or None without --val_freq / --val_epoch_freq. Every refusal of
    validation is here, so that it comes before the run touches its folder: DataError (one line)
    when the split is missing or unreadable, and a missing FID extractor."""
    if not validating(opt):
        return None
    problem = val_folder_problem(opt)
    if problem:
        raise DataError(problem)
    if opt.val_fid:
        extractor_path()   # a missing extractor is one line naming the install
    return create_dataset(opt.dataset_mode, val_data_config(opt))


def build_validation_hook(opt: argparse.Namespace, runtime: Runtime, exp_dir: Path, dataset: Dataset | None,
                          resumed: bool, saver: Saver, report: ReportMetrics,
                          rank_samples_per_epoch: int) -> ValidationHook | None:
    """The run's validation on ``dataset`` (from :func:`validation_split`), or None without one.
    Built once the folder is prepared: the FID cache is read from it, and a resume's best-so-far."""
    if dataset is None:
        return None

    train_batches = None
    if opt.eval and opt.bn_eval == "precise":   # training images as test.py reads them for it
        train_set = create_dataset(opt.dataset_mode, split_data_config(opt, "train"))
        train_batches = training_inputs(train_set, opt.batch_size, opt.seed, runtime.device)
    validator = Validator(dataset, validation_config(opt), runtime, cache_dir=exp_dir, train_batches=train_batches)
    best = None
    metric = best_metric(opt)
    if metric:
        # A fresh run starts without a best: the previous run's best.pt was moved aside with its files.
        previous = gather_to_all(read_best(exp_dir) if resumed and runtime.is_main else None, runtime)[0]
        best = BestKeeper(metric, previous, validation_settings(opt, validator.count))
    log.info("validating on %d images of split '%s' of %s every %s%s%s", validator.count, opt.val_phase, opt.dataroot,
             " and ".join(filter(None, [f"{opt.val_freq} samples" if opt.val_freq else "",
                                        f"{opt.val_epoch_freq} epochs" if opt.val_epoch_freq else ""])),
             f"; best checkpoint by {metric}" if best else "",
             f", early stop after {opt.early_stop} validations without a better one" if opt.early_stop else "")
    if best:
        log.info("these figures are test.py's for the same checkpoint: %s", reproducing_test_command(opt, validator.count))
    else:
        log.info("these figures are test.py's for the checkpoint validated (without --best_metric no 'best' is "
                 "kept; 'latest' holds the last validation's weights when it ran at the last step): %s",
                 reproducing_test_command(opt, validator.count))
    return ValidationHook(validator, opt.val_freq, opt.val_epoch_freq, report, saver, best, runtime.world_size,
                          rank_samples_per_epoch, early_stop=opt.early_stop)
