"""Preprocessing by name (``--preprocess``) and the per-sample augmentation.

Geometry runs on uint8 images: every image of a sample (A and B) gets the same resize, crop
and flip. Resizing is bicubic with antialiasing, like the classic pix2pix (which resized PIL
images bicubically).

The random crop and flip come from a seed given per sample, drawn from a generator of their
own, never from the global RNG: the loader derives the seed from (seed, epoch, index), so an
interrupted epoch resumes with the same augmentation whatever the number of workers, and
training code that uses the global RNG is not disturbed by the data pipeline.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, NamedTuple, Sequence

import numpy as np
import torch
from data.image_io import DataError
from data.image_ops import crop, hflip, resize_bicubic, to_unit
from data.padding import pad_to_multiple
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
    pads: bool = False       # reflect-pads to the generator's multiple (data/padding.py)


def valid_size(n: float, divisor: int) -> int:
    """The nearest multiple of ``divisor`` to ``n`` (halves round up), at least ``divisor``."""
    return max(divisor, int(n / divisor + 0.5) * divisor)


def _resize_square(cfg: DataConfig, h: int, w: int) -> Size:
    return (cfg.load_size, cfg.load_size)


def _reference_scaled_height(cfg: DataConfig, h: int, w: int) -> int:
    # The reference's arithmetic (its __scale_width, for both scale_width modes): truncated,
    # and at least crop_size, so that a wide image can still be cropped.
    return int(max(cfg.load_size * h / w, cfg.crop_size))


def _scale_width(cfg: DataConfig, h: int, w: int) -> Size:
    # No crop follows, so both sides must then be what the generator accepts.
    return (valid_size(_reference_scaled_height(cfg, h, w), cfg.size_divisor),
            valid_size(cfg.load_size, cfg.size_divisor))


def _scale_width_for_crop(cfg: DataConfig, h: int, w: int) -> Size:
    return (_reference_scaled_height(cfg, h, w), cfg.load_size)


def _make_valid(cfg: DataConfig, h: int, w: int) -> Size | None:
    size = (valid_size(h, cfg.size_divisor), valid_size(w, cfg.size_divisor))
    return None if size == (h, w) else size


PREPROCESS_MODES: Registry[PreprocessMode] = Registry("--preprocess")
PREPROCESS_MODES.add("resize_and_crop", PreprocessMode(_resize_square, True, True),
                     help="resize to load_size x load_size, then random crop_size crop")
PREPROCESS_MODES.add("crop", PreprocessMode(lambda cfg, h, w: None, True, False),
                     help="random crop_size crop at the stored size")
PREPROCESS_MODES.add("scale_width", PreprocessMode(_scale_width, False, True),
                     help="scale the width to load_size keeping the aspect ratio (height at least "
                          "crop_size); both sides rounded to the nearest size the generator accepts")
PREPROCESS_MODES.add("scale_width_and_crop", PreprocessMode(_scale_width_for_crop, True, True),
                     help="scale the width to load_size (height at least crop_size), then "
                          "random crop_size crop")
PREPROCESS_MODES.add("none", PreprocessMode(lambda cfg, h, w: _make_valid(cfg, h, w), False, False),
                     help="keep the stored size, only resized to the nearest multiple of the "
                          "generator's size divisor (at least one multiple)")
PREPROCESS_MODES.add("pad", PreprocessMode(lambda cfg, h, w: None, False, False, pads=True),
                     help="keep the stored size and pixels: reflect-pad to the generator's size "
                          "multiple; test results are cropped back to the stored size")


def output_size(cfg: DataConfig, height: int, width: int) -> Size:
    """Spatial size of the tensors a (height, width) image becomes."""
    mode = PREPROCESS_MODES.get(cfg.preprocess)
    if mode.crops:
        return (cfg.crop_size, cfg.crop_size)
    if mode.pads:
        return (-(-height // cfg.size_divisor) * cfg.size_divisor, -(-width // cfg.size_divisor) * cfg.size_divisor)
    return mode.resize_to(cfg, height, width) or (height, width)


def min_input_size(cfg: DataConfig) -> Size:
    """The smallest stored (height, width) this preprocessing can use."""
    mode = PREPROCESS_MODES.get(cfg.preprocess)
    # Only a crop without a resize before it can ask for more pixels than the image has.
    if mode.crops and not mode.uses_load_size:
        return (cfg.crop_size, cfg.crop_size)
    return (1, 1)


@dataclass(frozen=True)
class Geometry:
    """What one sample's images go through: resize, then a random crop, then a random flip."""
    resize_to: Size | None     # None: keep the stored size
    crop_size: int | None      # None: no crop
    flip: bool                 # flip horizontally with probability 0.5
    pad_multiple: int | None = None   # reflect-pad last, to multiples of this

    def draw(self, height: int, width: int, seed: int) -> tuple[int, int, bool]:
        """(top, left, flipped) for an image of (height, width) after the resize."""
        gen = torch.Generator().manual_seed(seed)
        top = left = 0
        if self.crop_size is not None:
            if self.crop_size > height or self.crop_size > width:
                raise DataError(f"crop size {self.crop_size} is larger than the image "
                                f"({height}x{width}) it crops")
            top = int(torch.randint(height - self.crop_size + 1, (1,), generator=gen))
            left = int(torch.randint(width - self.crop_size + 1, (1,), generator=gen))
        flipped = self.flip and bool(torch.rand(1, generator=gen) < 0.5)
        return top, left, flipped

    def __call__(self, images: Sequence[torch.Tensor], seed: int) -> list[torch.Tensor]:
        if self.resize_to is not None:
            images = [resize_bicubic(img, self.resize_to) for img in images]
        height, width = images[0].shape[-2:]
        top, left, flipped = self.draw(height, width, seed)
        out = []
        for img in images:
            if self.crop_size is not None:
                img = crop(img, top, left, self.crop_size, self.crop_size)
            img = hflip(img) if flipped else img
            out.append(img if self.pad_multiple is None else pad_to_multiple(img, self.pad_multiple))
        return out


def build_geometry(cfg: DataConfig, height: int, width: int) -> Geometry:
    mode = PREPROCESS_MODES.get(cfg.preprocess)
    size = mode.resize_to(cfg, height, width)
    return Geometry(resize_to=None if size == (height, width) else size,
                    crop_size=cfg.crop_size if mode.crops else None,
                    flip=not cfg.no_flip, pad_multiple=cfg.size_divisor if mode.pads else None)


def augment(cfg: DataConfig, images: Sequence[torch.Tensor], seed: int) -> list[torch.Tensor]:
    """Apply the same geometry to uint8 images (C, H, W) of one sample; return uint8 tensors."""
    height, width = images[0].shape[-2:]
    return build_geometry(cfg, height, width)(images, seed)


def to_signed_unit(image: torch.Tensor) -> torch.Tensor:
    """uint8 (C, H, W) -> float32 in [-1, 1], the classic ToTensor + Normalize(0.5, 0.5); 16-bit
    samples (int32, data/pixels.py) likewise, over 0..65535."""
    return to_unit(image).mul_(2.0).sub_(1.0)


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
