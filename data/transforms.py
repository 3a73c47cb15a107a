"""Preprocessing by name (``--preprocess``) and the per-sample augmentation.

Geometry runs on uint8 images with torchvision's transforms v2: every image of a sample
(A and B) goes through one ``Compose`` call, so they get the same resize, crop and flip.
Resizing is bicubic with antialiasing, like the classic pix2pix (which resized PIL images
bicubically).

The random crop and flip come from a seed given per sample, not from the global RNG: the
loader derives it from (seed, epoch, index), so an interrupted epoch resumes with the same
augmentation whatever the number of workers, and training code that uses the global RNG is
not disturbed by the data pipeline.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, NamedTuple, Sequence

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from util.registry import Registry

if TYPE_CHECKING:   # a type hint only: data/config.py imports this module to check --preprocess
    from data.config import DataConfig

Size = tuple[int, int]   # (height, width)


@dataclass(frozen=True)
class PreprocessMode:
    # (cfg, height, width) -> size to resize to before any crop, or None to keep the size.
    resize_to: Callable[[DataConfig, int, int], Size | None]
    crops: bool              # ends with a random crop_size x crop_size crop
    uses_load_size: bool


def valid_size(n: float, divisor: int) -> int:
    """The nearest multiple of ``divisor`` to ``n`` (halves round up), at least ``divisor``."""
    return max(divisor, int(n / divisor + 0.5) * divisor)


def _resize_square(cfg: DataConfig, h: int, w: int) -> Size:
    return (cfg.load_size, cfg.load_size)


def _scale_width(cfg: DataConfig, h: int, w: int) -> Size:
    # No crop follows, so both sides must already be what the generator accepts.
    width = valid_size(cfg.load_size, cfg.size_divisor)
    return (valid_size(h * width / w, cfg.size_divisor), width)


def _scale_width_for_crop(cfg: DataConfig, h: int, w: int) -> Size:
    # Keep the height at least crop_size so a wide image can still be cropped.
    return (max(cfg.crop_size, round(h * cfg.load_size / w)), cfg.load_size)


def _make_valid(cfg: DataConfig, h: int, w: int) -> Size | None:
    size = (valid_size(h, cfg.size_divisor), valid_size(w, cfg.size_divisor))
    return None if size == (h, w) else size


PREPROCESS_MODES: Registry[PreprocessMode] = Registry("--preprocess")
PREPROCESS_MODES.add("resize_and_crop", PreprocessMode(_resize_square, True, True),
                     help="resize to load_size x load_size, then random crop_size crop")
PREPROCESS_MODES.add("crop", PreprocessMode(lambda cfg, h, w: None, True, False),
                     help="random crop_size crop at the stored size")
PREPROCESS_MODES.add("scale_width", PreprocessMode(_scale_width, False, True),
                     help="scale the width to load_size keeping the aspect ratio; both sides "
                          "rounded to the nearest size the generator accepts")
PREPROCESS_MODES.add("scale_width_and_crop", PreprocessMode(_scale_width_for_crop, True, True),
                     help="scale the width to load_size (height at least crop_size), then "
                          "random crop_size crop")
PREPROCESS_MODES.add("none", PreprocessMode(lambda cfg, h, w: _make_valid(cfg, h, w), False, False),
                     help="keep the stored size, only resized to the nearest multiple of the "
                          "generator's size divisor (at least one multiple)")


def output_size(cfg: DataConfig, height: int, width: int) -> Size:
    """Spatial size of the tensors a (height, width) image becomes."""
    mode = PREPROCESS_MODES.get(cfg.preprocess)
    if mode.crops:
        return (cfg.crop_size, cfg.crop_size)
    return mode.resize_to(cfg, height, width) or (height, width)


def min_input_size(cfg: DataConfig) -> Size:
    """The smallest stored (height, width) this preprocessing can use."""
    mode = PREPROCESS_MODES.get(cfg.preprocess)
    # Only a crop without a resize before it can ask for more pixels than the image has.
    if mode.crops and not mode.uses_load_size:
        return (cfg.crop_size, cfg.crop_size)
    return (1, 1)


def build_geometry(cfg: DataConfig, height: int, width: int) -> v2.Transform:
    mode = PREPROCESS_MODES.get(cfg.preprocess)
    ops: list[v2.Transform] = []
    size = mode.resize_to(cfg, height, width)
    if size is not None and size != (height, width):
        ops.append(v2.Resize(list(size), interpolation=v2.InterpolationMode.BICUBIC, antialias=True))
    if mode.crops:
        ops.append(v2.RandomCrop(cfg.crop_size))
    if not cfg.no_flip:
        ops.append(v2.RandomHorizontalFlip(p=0.5))
    # Compose refuses an empty list (preprocess none at a valid size with no_flip).
    return v2.Compose(ops) if ops else v2.Identity()


def augment(cfg: DataConfig, images: Sequence[torch.Tensor], seed: int) -> list[torch.Tensor]:
    """Apply the same geometry to uint8 images (C, H, W) of one sample; return uint8 tensors."""
    height, width = images[0].shape[-2:]
    geometry = build_geometry(cfg, height, width)
    # fork_rng restores the global CPU RNG afterwards; devices=[] skips CUDA state. Only the CPU
    # generator is seeded (what the v2 transforms draw from): torch.manual_seed would also queue
    # lazy seeding of CUDA, XPU and MTIA, each capturing a stack trace, 0.4 ms of a 1.9 ms sample.
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        out = geometry(tuple(tv_tensors.Image(img) for img in images))
    return [t.as_subclass(torch.Tensor) for t in out]


def to_signed_unit(image: torch.Tensor) -> torch.Tensor:
    """uint8 (C, H, W) -> float32 in [-1, 1], the classic ToTensor + Normalize(0.5, 0.5)."""
    channels = image.shape[0]
    unit = TF.to_dtype(image, torch.float32, scale=True)
    return TF.normalize(unit, [0.5] * channels, [0.5] * channels)


def to_unit(image: torch.Tensor) -> torch.Tensor:
    """uint8 -> float32 in [0, 1]."""
    return TF.to_dtype(image, torch.float32, scale=True)


class SampleKey(NamedTuple):
    """What the loader's sampler hands a dataset: which sample, and the seed of its augmentation."""
    index: int
    seed: int


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A well-mixed 63-bit seed that depends only on (seed, epoch, index)."""
    state = np.random.SeedSequence([seed, epoch, index]).generate_state(2, dtype=np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


def split_key(key: int | SampleKey | tuple[int, int]) -> tuple[int, int]:
    """(index, augmentation seed); a bare index gets the seed of (0, epoch 0, index)."""
    if isinstance(key, tuple):
        return int(key[0]), int(key[1])
    return int(key), sample_seed(0, 0, int(key))
