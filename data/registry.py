"""The registry of ``--dataset_mode`` names, apart from the package that fills it
(data/__init__.py), so that a mode built on the others (``shards``) can look them up without
importing the package that registers it."""
from __future__ import annotations

from typing import Callable

from torch.utils.data import Dataset

from data.config import DataConfig
from util.registry import Registry

DatasetFactory = Callable[[DataConfig], Dataset]

DATASETS: Registry[DatasetFactory] = Registry("--dataset_mode")
