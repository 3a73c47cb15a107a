"""What a dataset needs to know, as one frozen value built by the options layer."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from data.image_io import DEFAULT_MAX_IMAGE_PIXELS, set_max_image_pixels
from data.transforms import PREPROCESS_MODES
from util.errors import OptionError


def is_url(text: str | Path) -> bool:
    """A remote location (http://, https://...) rather than a path; only shard sets are read from one."""
    return "://" in str(text) and not isinstance(text, Path)


@dataclass(frozen=True)
class DataConfig:
    dataroot: Path | str             # a str only when it is a URL (Path would fold its '//')
    phase: str = "train"
    direction: str = "AtoB"          # "BtoA" swaps the halves of an aligned image
    input_nc: int = 3                # 1 -> A is grayscale
    output_nc: int = 3               # 1 -> B is grayscale
    preprocess: str = "resize_and_crop"
    load_size: int = 286
    crop_size: int = 256
    no_flip: bool = False
    max_dataset_size: int | None = None
    # Spatial sizes the generator accepts are multiples of this (256 for unet_256, 128 for
    # unet_128, 4 for the ResNets); preprocess modes without a crop resize to the nearest one.
    size_divisor: int = 4
    skip_bad_images: bool = False
    cache: bool = False              # decode every image once and keep it in memory
    shard_cache: Path | None = None  # where shards read from URLs are downloaded (None: temp dir)
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS   # larger images are refused; 0: no limit

    def __post_init__(self) -> None:
        # Coerce str -> Path here so callers may pass either, while the value stays frozen.
        if not is_url(self.dataroot):
            object.__setattr__(self, "dataroot", Path(self.dataroot))
        if self.shard_cache is not None:
            object.__setattr__(self, "shard_cache", Path(self.shard_cache))
        self.validate()
        self.apply_limits()

    def validate(self) -> None:
        if self.direction not in ("AtoB", "BtoA"):
            raise OptionError(f"--direction must be AtoB or BtoA, not {self.direction!r}")
        for name, value in (("--input_nc", self.input_nc), ("--output_nc", self.output_nc)):
            if value < 1:
                raise OptionError(f"{name} must be 1 or more channels, not {value}")
        PREPROCESS_MODES.canonical(self.preprocess)   # raises UnknownNameError listing the modes
        for name, value in (("--load_size", self.load_size), ("--crop_size", self.crop_size),
                            ("size_divisor", self.size_divisor)):
            if value < 1:
                raise OptionError(f"{name} must be positive, not {value}")
        if self.max_image_pixels < 0:
            raise OptionError(f"--max_image_pixels must be 0 (no limit) or more, not {self.max_image_pixels}")
        if self.max_dataset_size is not None and self.max_dataset_size < 1:
            raise OptionError(f"--max_dataset_size must be positive, not {self.max_dataset_size}")
        mode = PREPROCESS_MODES.get(self.preprocess)
        if mode.crops:
            if self.crop_size % self.size_divisor:
                raise OptionError(
                    f"--crop_size {self.crop_size} is not a multiple of {self.size_divisor}, "
                    "which the generator needs")
            if mode.uses_load_size and self.load_size < self.crop_size:
                raise OptionError(f"--load_size {self.load_size} is smaller than --crop_size "
                                  f"{self.crop_size} (--preprocess {self.preprocess})")

    def apply_limits(self) -> None:
        """Make this process's readers use the config's pixel limit (Pillow keeps it per process)."""
        set_max_image_pixels(self.max_image_pixels)

    def __setstate__(self, state: dict) -> None:
        # A loader worker started by spawn (macOS, Windows) unpickles the dataset's config with
        # Pillow's default limit in place: it takes the config's again.
        for name, value in state.items():
            object.__setattr__(self, name, value)
        self.apply_limits()
