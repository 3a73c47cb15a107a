"""What the datasets reading an :class:`~data.image_store.ImageStore` (or a shard store) share:
their files, their length and the size each sample's tensors will have."""
from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from torch.utils.data import Dataset

from data.config import DataConfig
from data.image_io import DataError
from data.image_store import ImageStore
from data.transforms import PREPROCESS_MODES, Size, output_size


class StoreDataset(Dataset):
    """A dataset whose samples are ``self.store``'s, one per file (set by the subclass)."""

    cfg: DataConfig
    store: ImageStore
    # Whether items hold a target "B" beside the input "A": what training needs (test.py does not).
    has_targets: ClassVar[bool] = True

    @property
    def paths(self) -> list[Path]:
        return self.store.paths

    def __len__(self) -> int:
        return len(self.store)

    def stored_image_size(self, height: int, width: int) -> Size:
        """The (height, width) of one image of a sample stored as a ``height`` x ``width`` file."""
        return height, width

    def sample_sizes(self) -> list[Size] | None:
        """The (height, width) each sample's tensors have, for batching by size (asked only for
        batches of more than one image). When the store does not know its images' sizes before
        decoding them (shards of an older format): None if a crop makes every sample one size,
        else a DataError saying why, since batches of mixed sizes cannot be stacked."""
        sizes = getattr(self.store, "sizes", None)
        if sizes is None:
            if PREPROCESS_MODES.get(self.cfg.preprocess).crops:
                return None
            raise DataError(f"{self.store.no_sizes}; --preprocess {self.cfg.preprocess} keeps each image's "
                            "own size, so batches of more than one need them: use --batch_size 1 or a "
                            "--preprocess with a crop")
        return [output_size(self.cfg, *self.stored_image_size(h, w)) for h, w in sizes]
