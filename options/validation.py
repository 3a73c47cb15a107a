"""The validation and best-checkpoint options of train.py, their cross-checks, and what they
configure (the validation split and ``inference.validation.ValidationConfig``)."""
from __future__ import annotations

import argparse
import logging
from dataclasses import replace
from pathlib import Path
from typing import Iterator

import torch
from torch.utils.data import Dataset

from data import DataError, create_dataset
from data.config import DataConfig
from data.loader import create_dataloader
from engine.best import BestKeeper, read_best
from engine.distributed import Runtime, gather_to_all
from engine.saver import Saver
from inference.validation import ValidationConfig, Validator
from inference.validation_hook import ReportMetrics, ValidationHook
from models.batchnorm import BN_EVAL_MODES
from options.base import non_negative_int, positive_int
from options.configs import data_config
from options.norm_behaviour import add_norm_behaviour_options
from reporting.fid import extractor_path
from reporting.metric_goals import HIGHER_IS_BETTER

log = logging.getLogger("train")

BEST_METRICS = [m.lower() for m in HIGHER_IS_BETTER]
SET_METRICS = ("fid", "kid")   # need --val_fid


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
    goals = ", ".join(f"{m.lower()} {'higher' if up else 'lower'}" for m, up in HIGHER_IS_BETTER.items())
    g.add_argument("--best_metric", default=None, choices=BEST_METRICS,
                   help=f"keep best.pt / best_net_G.pt, the checkpoint that scored best on this validation "
                        f"metric ({goals} is better); use it with --epoch best")
    # How G runs when validated: the flags test.py has, with the same meaning.
    group = add_norm_behaviour_options(p, BN_EVAL_MODES.choices())
    group.add_argument("--bn_precise_batches", type=positive_int, default=50,
                       help="with --eval --bn_eval precise: training batches the statistics are measured on")


def validating(opt: argparse.Namespace) -> bool:
    return bool(getattr(opt, "val_freq", 0) or getattr(opt, "val_epoch_freq", 0))


def _best_needs_validation(opt: argparse.Namespace) -> str | None:
    metric = getattr(opt, "best_metric", None)
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


VALIDATION_CHECKS = [_best_needs_validation, _val_fid_needs_validation]


def val_data_config(opt: argparse.Namespace) -> DataConfig:
    """The validation split as test.py reads a split: no flips."""
    return replace(data_config(opt, phase=opt.val_phase), no_flip=True, max_dataset_size=None)


def val_folder_problem(opt: argparse.Namespace) -> str | None:
    """A missing split is an error, not a silent fallback: validation was asked for."""
    folder = Path(opt.dataroot) / opt.val_phase
    if folder.is_dir():
        return None
    flag = "--val_freq" if opt.val_freq else "--val_epoch_freq"
    return (f"{flag}: no validation split {folder} (make one, e.g. with datasets/combine_A_and_B.py, "
            "or name another folder of --dataroot with --val_phase)")


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

    def train_batches() -> Iterator[torch.Tensor]:   # --bn_eval precise: training images as at test time
        train_set = create_dataset(opt.dataset_mode, replace(data_config(opt), no_flip=True))
        loader = create_dataloader(train_set, opt.batch_size, shuffle=True, num_workers=0, seed=opt.seed)
        return (batch["A"] for batch in loader)

    validator = Validator(dataset, validation_config(opt), runtime, cache_dir=exp_dir, train_batches=train_batches)
    best = None
    if opt.best_metric:
        # A fresh run starts without a best: the previous run's best.pt was moved aside with its files.
        previous = gather_to_all(read_best(exp_dir) if resumed and runtime.is_main else None, runtime)[0]
        best = BestKeeper(opt.best_metric, previous)
    log.info("validating on %d images of %s every %s%s", validator.count, Path(opt.dataroot) / opt.val_phase,
             " and ".join(filter(None, [f"{opt.val_freq} samples" if opt.val_freq else "",
                                        f"{opt.val_epoch_freq} epochs" if opt.val_epoch_freq else ""])),
             f"; best checkpoint by {opt.best_metric}" if best else "")
    return ValidationHook(validator, opt.val_freq, opt.val_epoch_freq, report, saver, best, runtime.world_size,
                          rank_samples_per_epoch)
