"""Any folder of colour photos as a colorization set: L in, ab out.

A = L/50 - 1 with shape (1, H, W) and B = ab/110 with shape (2, H, W), both from the same
augmented photo; ``data.color.lab_tensors_to_rgb(A, B)`` rebuilds the RGB image.
Grayscale photos are accepted (their ab is zero) rather than rejected, since large photo
folders often contain a few.
"""
from __future__ import annotations

import torch

from data.config import DataConfig
from data.image_store import StoreFactory
from data.single import SingleDataset
from data.transforms import SampleKey, augment, split_key, to_unit
from data.color import normalize_ab, normalize_l, rgb_to_lab
from util.errors import OptionError

INPUT_NC, OUTPUT_NC = 1, 2


class ColorizationDataset(SingleDataset):
    """Reads ``dataroot/phase`` when that folder exists, otherwise ``dataroot`` itself."""

    has_targets = True   # ab, split off each photo

    def __init__(self, cfg: DataConfig, store: StoreFactory | None = None) -> None:
        if (cfg.input_nc, cfg.output_nc) != (INPUT_NC, OUTPUT_NC):
            raise OptionError(f"--dataset_mode colorization gives L (1 channel) in and ab (2 channels) "
                              f"out; got --input_nc {cfg.input_nc} --output_nc {cfg.output_nc}")
        super().__init__(cfg, store)

    @staticmethod
    def decode_mode(cfg: DataConfig) -> str:
        return "RGB"  # the photo itself; L and ab are split off after augmentation

    def __getitem__(self, key: int | SampleKey) -> dict[str, torch.Tensor | str]:
        index, seed = split_key(key)
        (rgb,) = augment(self.cfg, self.store.load(index), seed)
        lab = rgb_to_lab(to_unit(rgb))
        path = str(self.store.paths[index])
        return {"A": normalize_l(lab[:1]), "B": normalize_ab(lab[1:]), "A_paths": path, "B_paths": path}
