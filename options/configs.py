"""Turn parsed options into the small config values that components take."""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from data.config import DataConfig
from models.networks import generator_spec


def experiment_dir(opt: argparse.Namespace) -> Path:
    return Path(opt.checkpoints_dir) / opt.name


def _derived_data_fields(opt: argparse.Namespace, phase: str | None) -> dict[str, Any]:
    """The ``DataConfig`` fields that are not simply the option of the same name."""
    return {
        "phase": phase or opt.phase,
        # Test time never flips: results must be reproducible and comparable to real_B.
        "no_flip": opt.no_flip or not opt.is_train,
        "size_divisor": generator_spec(opt).size_multiple,
        "cache": getattr(opt, "cache_dataset", False),
    }


def data_config(opt: argparse.Namespace, phase: str | None = None) -> DataConfig:
    """Every other field is the option of its name, so a data option is a field in DataConfig
    and a flag of that name, with nothing to copy here; a field whose option this command does
    not have (``--shard_cache``) keeps its default."""
    derived = _derived_data_fields(opt, phase)
    same_name = {f.name: getattr(opt, f.name) for f in dataclasses.fields(DataConfig)
                 if f.name not in derived and hasattr(opt, f.name)}
    return DataConfig(**same_name, **derived)
