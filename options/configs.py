"""Turn parsed options into the small config values that components take."""
from __future__ import annotations

import argparse
from pathlib import Path

from data.config import DataConfig
from models.networks import generator_spec


def experiment_dir(opt: argparse.Namespace) -> Path:
    return Path(opt.checkpoints_dir) / opt.name


def data_config(opt: argparse.Namespace, phase: str | None = None) -> DataConfig:
    return DataConfig(
        dataroot=opt.dataroot, phase=phase or opt.phase, direction=opt.direction,
        input_nc=opt.input_nc, output_nc=opt.output_nc, preprocess=opt.preprocess,
        load_size=opt.load_size, crop_size=opt.crop_size,
        # Test time never flips: results must be reproducible and comparable to real_B.
        no_flip=opt.no_flip or not opt.is_train,
        max_dataset_size=opt.max_dataset_size, size_divisor=generator_spec(opt).size_multiple,
        skip_bad_images=opt.skip_bad_images, cache=getattr(opt, "cache_dataset", False),
        shard_cache=getattr(opt, "shard_cache", None))

