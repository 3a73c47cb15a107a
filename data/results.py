"""How the images of a test batch map back to the files they came from: at their stored size
(the padding of ``--preprocess pad`` cropped away) and at their bit depth."""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch

from data.config import DataConfig
from data.padding import crop_padding
from data.transforms import PREPROCESS_MODES
from reporting.result_files import output_bits, test_image_pixels


def as_stored(image: torch.Tensor, batch: Mapping[str, Any], i: int, cfg: DataConfig | None) -> torch.Tensor:
    """Image ``i`` of a test batch at its stored size: the padding of ``--preprocess pad``
    cropped away (other modes give what they resized to, as before)."""
    if cfg is None or not PREPROCESS_MODES.get(cfg.preprocess).pads or "A_size" not in batch:
        return image
    height, width = (int(v) for v in batch["A_size"][i])
    return crop_padding(image, height, width, cfg.size_divisor)


def visual_bits(name: str, batch: Mapping[str, Any], i: int, option: str) -> int:
    """The depth to write visual ``name`` at: real_A at A's depth, real_B and fake_B at B's
    (fake_B at A's when there is no B); 8 bits for datasets that do not say."""
    side = "A" if name == "real_A" or "B_bits" not in batch else "B"
    bits = batch.get(f"{side}_bits")
    return output_bits(option, int(bits[i]) if bits is not None else 8)


def measured_pixels(name: str, images: torch.Tensor, batch: Mapping[str, Any], i: int, cfg: DataConfig | None,
                    option: str = "auto") -> np.ndarray:
    """The pixels test.py writes, and measures, for visual ``name`` of image ``i`` of a batch
    (``images``: that visual's batch) with ``--output_bits option``: at the stored size and depth."""
    return test_image_pixels(as_stored(images[i], batch, i, cfg), visual_bits(name, batch, i, option))
