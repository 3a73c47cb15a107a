"""A folder of inputs without targets, for inference: item ``{"A", "A_paths"}``."""
from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import Dataset

from data.aligned import channel_mode, check_min_size
from data.config import DataConfig
from data.image_io import ImageSource, ImageStore, StoreFactory, image_folder, load_tensor
from data.transforms import SampleKey, augment, split_key, to_signed_unit


def input_files(cfg: DataConfig) -> tuple[Path, list[Path] | None]:
    """The folder to read and, when ``dataroot`` is one image file, that file alone."""
    if cfg.dataroot.is_file():
        return cfg.dataroot.parent, [cfg.dataroot]
    return image_folder(cfg.dataroot, cfg.phase, phase_optional=True), None


class SingleDataset(Dataset):
    """Reads ``dataroot/phase`` when that folder exists, otherwise ``dataroot`` itself (or the
    one image file ``dataroot`` names), or from ``store`` (data/shards.py). A gets ``input_nc``
    channels."""

    def __init__(self, cfg: DataConfig, store: StoreFactory | None = None) -> None:
        self.cfg = cfg
        self.mode_A = self.decode_mode(cfg)
        if store is not None:
            self.store = store(self._decode, self._check)
            return
        folder, files = input_files(cfg)
        self.store = ImageStore(folder, self._decode, self._check,
                                skip_bad=cfg.skip_bad_images, cache=cfg.cache,
                                limit=cfg.max_dataset_size, files=files)

    @staticmethod
    def decode_mode(cfg: DataConfig) -> str:
        """The PIL mode images are decoded to."""
        return channel_mode(cfg.input_nc, "--input_nc")

    @property
    def paths(self) -> list[Path]:
        return self.store.paths

    def _check(self, path: ImageSource, width: int, height: int) -> None:
        check_min_size(self.cfg, path, width, height)

    def _decode(self, path: ImageSource) -> tuple[torch.Tensor]:
        return (load_tensor(path, self.mode_A),)

    def __len__(self) -> int:
        return len(self.store)

    def __getitem__(self, key: int | SampleKey) -> dict[str, torch.Tensor | str]:
        index, seed = split_key(key)
        (a,) = augment(self.cfg, self.store.load(index), seed)
        return {"A": to_signed_unit(a), "A_paths": str(self.store.paths[index])}
