"""Paired images stored side by side: each file holds A | B, split at the middle."""
from __future__ import annotations

import torch

from data.config import DataConfig
from data.image_io import DataError, ImageSource, image_folder, pil_to_uint8
from data.image_store import ImageStore, StoreFactory
from data.pixels import open_eight_bit
from data.store_dataset import StoreDataset
from data.transforms import SampleKey, Size, augment, min_input_size, split_key, to_signed_unit
from util.errors import OptionError


def channel_mode(channels: int, option: str) -> str:
    if channels == 1:
        return "L"
    if channels == 3:
        return "RGB"
    raise OptionError(f"{option} {channels}: this dataset gives 1 (grayscale) or 3 (RGB) channels")


def check_min_size(cfg: DataConfig, path: ImageSource, width: int, height: int) -> None:
    min_h, min_w = min_input_size(cfg)
    if height < min_h or width < min_w:
        raise DataError(f"{path}: image is {width}x{height}, smaller than --crop_size "
                        f"{cfg.crop_size} (--preprocess {cfg.preprocess})")


class AlignedDataset(StoreDataset):
    """Reads ``dataroot/phase``; item ``{"A", "B", "A_paths", "B_paths"}``.

    The left half is A and the right half B; ``direction="BtoA"`` swaps them, and the
    channel counts (input_nc for A, output_nc for B) apply after the swap, to what the
    network sees. ``store`` reads the files from elsewhere than ``dataroot/phase`` (data/shards.py).
    """

    def __init__(self, cfg: DataConfig, store: StoreFactory | None = None) -> None:
        self.cfg = cfg
        self.mode_A = channel_mode(cfg.input_nc, "--input_nc")
        self.mode_B = channel_mode(cfg.output_nc, "--output_nc")
        if store is not None:
            self.store = store(self._decode, self._check)
        else:
            self.store = ImageStore(image_folder(cfg.dataroot, cfg.phase), self._decode, self._check,
                                    skip_bad=cfg.skip_bad_images, cache=cfg.cache,
                                    limit=cfg.max_dataset_size)

    def stored_image_size(self, height: int, width: int) -> Size:
        return height, width // 2   # A and B side by side

    def _check(self, path: ImageSource, width: int, height: int) -> None:
        if width % 2:
            raise DataError(f"{path}: width {width} is odd; an aligned image holds A and B side "
                            "by side in two halves of equal width")
        check_min_size(self.cfg, path, width // 2, height)

    def _decode(self, path: ImageSource) -> tuple[torch.Tensor, torch.Tensor]:
        image = open_eight_bit(path)   # aligned reads 8 bits
        width, height = image.size
        half = width // 2
        left, right = image.crop((0, 0, half, height)), image.crop((half, 0, 2 * half, height))
        a, b = (right, left) if self.cfg.direction == "BtoA" else (left, right)
        return pil_to_uint8(a, self.mode_A, path), pil_to_uint8(b, self.mode_B, path)

    def __getitem__(self, key: int | SampleKey) -> dict[str, torch.Tensor | str]:
        index, seed = split_key(key)
        pixels = self.store.load(index)
        a, b = augment(self.cfg, pixels, seed)
        path = str(self.store.paths[index])
        return {"A": to_signed_unit(a), "B": to_signed_unit(b), "A_paths": path, "B_paths": path,
                "A_size": torch.tensor(pixels[0].shape[-2:])}
