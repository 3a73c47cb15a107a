"""Datasets by name (``--dataset_mode``) and the preprocessing modes (``--preprocess``).

Build a dataset with ``create_dataset(mode, DataConfig(...))`` and a loader with
``data.loader.create_dataloader``. Items are dicts: ``{"A", "B", "A_paths", "B_paths"}``
(``single``: only A); images are float32 (C, H, W) in [-1, 1].
"""
from __future__ import annotations

from pathlib import Path

from torch.utils.data import Dataset

from data.aligned import AlignedDataset
from data.colorization import ColorizationDataset
from data.config import DataConfig, is_url
from data.image_io import DataError
from data.paired import PairedDataset, side_folders
from data.shards import ShardDataset, index_location
from data.registry import DATASETS
from data.shard_format import ONE_FILE, PAIR_FILES
from data.single import SingleDataset
from data.transforms import PREPROCESS_MODES

def _folder_split(dataroot: str | Path, phase: str) -> str | None:
    folder = Path(dataroot) / phase
    return None if folder.is_dir() else f"no folder {folder}"


def _paired_split(dataroot: str | Path, phase: str) -> str | None:
    try:
        for side in ("A", "B"):
            side_folders(Path(dataroot), phase, side)
    except DataError as err:
        return str(err)
    return None


def _shard_split(dataroot: str | Path, phase: str) -> str | None:
    if is_url(dataroot):
        return None   # fetched when the split is read, which words its own errors
    index = Path(index_location(dataroot, phase))
    return None if index.is_file() else f"no shard index {index}"


# shard_layout: which files make a sample in a shard set (datasets/make_shards.py); a mode without
# one cannot be sharded. split: why --dataroot holds no split of a phase in this mode (None: it does).
DATASETS.add("aligned", AlignedDataset, shard_layout=ONE_FILE, split=_folder_split,
             help="paired images stored side by side (A|B) in dataroot/phase; --direction BtoA swaps them")
DATASETS.add("single", SingleDataset, shard_layout=ONE_FILE, split=_folder_split,
             help="one folder of inputs (dataroot/phase, else dataroot, or one image file) for inference")
DATASETS.add("paired", PairedDataset, shard_layout=PAIR_FILES, split=_paired_split,
             help="pairs from two folders matched by name: dataroot/A/phase + dataroot/B/phase, or "
                  "dataroot/phase_A + phase_B; A1, A2 ... stack into channels; 16-bit kept")
DATASETS.add("colorization", ColorizationDataset, shard_layout=ONE_FILE, split=_folder_split,
             help="any folder of colour photos; A = L/50-1 (1 channel), B = ab/110 (2 channels)")
DATASETS.add("shards", ShardDataset, reads_urls=True, split=_shard_split,
             help="tar shards from datasets/make_shards.py (--dataroot: the folder or URL of <phase>.json); "
                  "samples as the mode they were made from gives them")


def create_dataset(mode: str, cfg: DataConfig) -> Dataset:
    """Build the dataset registered as ``mode``; bad files raise :class:`DataError`."""
    entry = DATASETS.entry(mode)
    if is_url(cfg.dataroot) and not entry.meta.get("reads_urls", False):
        # Only a shard set is read over the network; the folder modes would fail on the str.
        raise DataError(f"--dataroot {cfg.dataroot}: a URL is read only with --dataset_mode shards (a shard set "
                        f"made with datasets/make_shards.py), not with --dataset_mode {entry.name}")
    try:
        return entry.obj(cfg)
    except DataError as err:
        hint = _paired_layout_hint(entry.name, cfg)
        if hint is None:
            raise
        raise DataError(f"{err}; {hint}") from None


def split_problem(mode: str, dataroot: str | Path, phase: str) -> str | None:
    """Why ``dataroot`` holds no split ``phase`` that --dataset_mode ``mode`` reads; None when it
    holds one (or, over a URL, when only reading it can tell)."""
    return DATASETS.entry(mode).meta["split"](dataroot, phase)


def targets_problem(dataset_or_mode: object, what: str) -> str | None:
    """Why ``what`` (a dataset, or a mode's class) cannot train: its items hold no target ``B``."""
    if getattr(dataset_or_mode, "has_targets", True):
        return None
    trainable = ", ".join(e.name for e in DATASETS if getattr(e.obj, "has_targets", False))
    return (f"{what} gives inputs only, no targets; training needs pairs: --dataset_mode {trainable}, or shards "
            "made from one of them (single is for test.py)")


def _paired_layout_hint(mode: str, cfg: DataConfig) -> str | None:
    """A folder in the two-folder layout read with another mode (the default ``aligned``, or test.py,
    whose checkpoint does not record the mode) fails on a missing ``<phase>`` folder: say which mode
    reads it."""
    if mode == "paired" or not isinstance(cfg.dataroot, Path) or (cfg.dataroot / cfg.phase).is_dir():
        return None
    if _paired_split(cfg.dataroot, cfg.phase) is not None:
        return None
    return "it holds pairs in two folders (A and B): add --dataset_mode paired"


__all__ = ["DATASETS", "PREPROCESS_MODES", "DataConfig", "DataError", "create_dataset", "split_problem",
           "targets_problem"]
