"""A folder of inputs without targets, for inference: item ``{"A", "A_paths"}``."""
from __future__ import annotations

from pathlib import Path

import torch

from data.aligned import channel_mode, check_min_size
from data.config import DataConfig
from data.image_io import ImageSource, image_folder
from data.image_store import ImageStore, StoreFactory
from data.pixels import bits_of, read_pixels
from data.store_dataset import StoreDataset
from data.transforms import SampleKey, augment, split_key, to_signed_unit


def input_files(cfg: DataConfig) -> tuple[Path, list[Path] | None]:
    """The folder to read and, when ``dataroot`` is one image file, that file alone."""
    if cfg.dataroot.is_file():
        return cfg.dataroot.parent, [cfg.dataroot]
    return image_folder(cfg.dataroot, cfg.phase, phase_optional=True), None


class SingleDataset(StoreDataset):
    """Reads ``dataroot/phase`` when that folder exists, otherwise ``dataroot`` itself (or the
    one image file ``dataroot`` names), or from ``store`` (data/shards.py). A gets ``input_nc``
    channels."""

    has_targets = False

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

    def _check(self, path: ImageSource, width: int, height: int) -> None:
        check_min_size(self.cfg, path, width, height)

    def _decode(self, path: ImageSource) -> tuple[torch.Tensor]:
        # 16-bit files stay 16-bit (data/pixels.py); 8-bit ones decode as they always did.
        return (read_pixels(path, 1 if self.mode_A == "L" else 3),)

    def __getitem__(self, key: int | SampleKey) -> dict[str, torch.Tensor | str]:
        index, seed = split_key(key)
        (pixels,) = self.store.load(index)
        (a,) = augment(self.cfg, (pixels,), seed)
        return {"A": to_signed_unit(a), "A_paths": str(self.store.paths[index]),
                "A_size": torch.tensor(pixels.shape[-2:]), "A_bits": bits_of(pixels)}
