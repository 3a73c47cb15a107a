"""Datasets by name (``--dataset_mode``) and the preprocessing modes (``--preprocess``).

Build a dataset with ``create_dataset(mode, DataConfig(...))`` and a loader with
``data.loader.create_dataloader``. Items are dicts: ``{"A", "B", "A_paths", "B_paths"}``
(``single``: only A); images are float32 (C, H, W) in [-1, 1].
"""
from __future__ import annotations

from typing import Callable

from torch.utils.data import Dataset

from data.aligned import AlignedDataset
from data.colorization import ColorizationDataset
from data.config import DataConfig
from data.image_io import DataError
from data.one_size import check_one_size
from data.single import SingleDataset
from data.transforms import PREPROCESS_MODES
from util.registry import Registry

DatasetFactory = Callable[[DataConfig], Dataset]

DATASETS: Registry[DatasetFactory] = Registry("--dataset_mode")
DATASETS.add("aligned", AlignedDataset,
             help="paired images stored side by side (A|B) in dataroot/phase; --direction BtoA swaps them")
DATASETS.add("single", SingleDataset,
             help="one folder of inputs (dataroot/phase, else dataroot, or one image file) for inference")
DATASETS.add("colorization", ColorizationDataset,
             help="any folder of colour photos; A = L/50-1 (1 channel), B = ab/110 (2 channels)")


def create_dataset(mode: str, cfg: DataConfig, batch_size: int = 1) -> Dataset:
    """Build the dataset registered as ``mode``; bad files raise :class:`DataError`, and so do
    images of different sizes that would meet in a batch of ``batch_size``."""
    dataset = DATASETS.get(mode)(cfg)
    check_one_size(dataset.paths, mode, cfg, batch_size)
    return dataset


__all__ = ["DATASETS", "PREPROCESS_MODES", "DataConfig", "DataError", "create_dataset"]
