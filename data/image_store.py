"""A dataset's image files: checked once at start-up, decoded on demand or kept in memory; and
the protocol by which a dataset reads its samples from elsewhere (tar shards)."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

import torch

from data.image_io import IMAGE_EXTENSIONS, DataError, ImageSource, list_files, read_header
from data.packed import PackedSamples

logger = logging.getLogger(__name__)

Decoder = Callable[[ImageSource], tuple[torch.Tensor, ...]]
HeaderCheck = Callable[[ImageSource, int, int], None]   # (path, width, height); raises DataError
# Builds a dataset's samples from elsewhere (tar shards) with the dataset's own decoder and check.
StoreFactory = Callable[[Decoder, HeaderCheck], "ImageStore"]


class ImageStore:
    """The files of one dataset: checked once at start-up, then decoded on demand or from memory.

    At start-up every file's header is read (cheap) and checked, so an odd width or an image
    smaller than the crop is reported before training starts. Truncated files only show up
    when decoded, so they are found up front when ``skip_bad`` or ``cache`` is on (each file
    is decoded once then); otherwise a truncated file raises :class:`DataError` when loaded.

    With ``cache`` every decoded sample is kept in memory (:class:`data.packed.PackedSamples`).
    """

    def __init__(self, folder: Path, decode: Decoder, check: HeaderCheck, *, skip_bad: bool = False,
                 cache: bool = False, limit: int | None = None, files: list[Path] | None = None,
                 size_of: Callable[[Path], tuple[int, int]] = read_header) -> None:
        """``size_of``: a file's (width, height) from its header (a data set that has read the
        headers already hands them in)."""
        self.folder = folder
        self._decode = decode
        candidates = list_files(folder) if files is None else files
        self.paths: list[Path] = []
        self.sizes: list[tuple[int, int]] = []   # (height, width) from each kept file's header
        decoded: list[tuple[torch.Tensor, ...]] = []
        for path in candidates:
            if limit is not None and len(self.paths) >= limit:
                break
            try:
                width, height = size_of(path)
                check(path, width, height)
                sample = decode(path) if (cache or skip_bad) else ()
            except DataError as err:
                if not skip_bad:
                    raise
                logger.warning("skipping bad image: %s", err)
                continue
            self.paths.append(path)
            self.sizes.append((height, width))
            if cache:
                decoded.append(sample)
        if not self.paths:
            raise DataError(f"{folder}: no usable images (accepted extensions: "
                            f"{', '.join(sorted(IMAGE_EXTENSIONS))})")
        self._packed: PackedSamples | None = None
        if cache:
            self._packed = PackedSamples(decoded)
            logger.info("cached %d images from %s (%.1f MiB)", len(decoded), self.folder,
                        self._packed.mebibytes)

    def __len__(self) -> int:
        return len(self.paths)

    def load(self, index: int) -> tuple[torch.Tensor, ...]:
        """The decoded uint8 tensors of sample ``index`` (views into the cache when cached)."""
        if self._packed is None:
            return self._decode(self.paths[index])
        return self._packed[index]
