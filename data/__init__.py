"""Datasets by name (``--dataset_mode``) and the preprocessing modes (``--preprocess``).

Build a dataset with ``create_dataset(mode, DataConfig(...))`` and a loader with
``data.loader.create_dataloader``. Items are dicts: ``{"A", "B", "A_paths", "B_paths"}``
(``single``: only A); images are float32 (C, H, W) in [-1, 1].
"""
from __future__ import annotations

from torch.utils.data import Dataset

from data.aligned import AlignedDataset
from data.colorization import ColorizationDataset
from data.config import DataConfig
from data.image_io import DataError
from data.paired import PairedDataset
from data.shards import ShardDataset
from data.registry import DATASETS
from data.shard_format import ONE_FILE, PAIR_FILES
from data.single import SingleDataset
from data.transforms import PREPROCESS_MODES

# shard_layout: which files make a sample in a shard set (datasets/make_shards.py); a mode without
# one cannot be sharded.
DATASETS.add("aligned", AlignedDataset, shard_layout=ONE_FILE,
             help="paired images stored side by side (A|B) in dataroot/phase; --direction BtoA swaps them")
DATASETS.add("single", SingleDataset, shard_layout=ONE_FILE,
             help="one folder of inputs (dataroot/phase, else dataroot, or one image file) for inference")
DATASETS.add("paired", PairedDataset, shard_layout=PAIR_FILES,
             help="pairs from two folders matched by name: dataroot/A/phase + dataroot/B/phase, or "
                  "dataroot/phase_A + phase_B; A1, A2 ... stack into channels; 16-bit kept")
DATASETS.add("colorization", ColorizationDataset, shard_layout=ONE_FILE,
             help="any folder of colour photos; A = L/50-1 (1 channel), B = ab/110 (2 channels)")
DATASETS.add("shards", ShardDataset,
             help="tar shards from datasets/make_shards.py (--dataroot: the folder or URL of <phase>.json); "
                  "samples as the mode they were made from gives them")


def create_dataset(mode: str, cfg: DataConfig) -> Dataset:
    """Build the dataset registered as ``mode``; bad files raise :class:`DataError`."""
    return DATASETS.get(mode)(cfg)


__all__ = ["DATASETS", "PREPROCESS_MODES", "DataConfig", "DataError", "create_dataset"]
