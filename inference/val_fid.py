"""The real images' Inception features of a validation split, computed once per run.

Each validation then costs only the fakes' features. The file is keyed by what decides the
real pixels: the images (path, size in bytes, modification time), how many are used, and the
data settings (crop, resize, direction, channels) and seed the caller passes; a changed split
gets a new file instead of stale statistics. A file that cannot be read is computed again.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

log = logging.getLogger(__name__)

CACHE_FOLDER = "val_fid"


def cache_key(paths: Sequence[Path], settings: Mapping[str, Any]) -> str:
    files = []
    for path in paths:
        stat = os.stat(path)
        files.append([str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns])
    text = json.dumps({"files": files, "settings": dict(settings)}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


class RealFeatureCache:
    """``features``: the (N, 2048) features of the real images, or None until computed;
    ``store(features)`` keeps them in memory and, with a folder, on disk (atomically)."""

    def __init__(self, folder: Path | None, paths: Sequence[Path], settings: Mapping[str, Any]) -> None:
        self.path = None if folder is None else Path(folder) / CACHE_FOLDER / f"real_{cache_key(paths, settings)}.npy"
        self.features: np.ndarray | None = None
        if self.path is not None and self.path.is_file():
            try:
                self.features = np.load(self.path, allow_pickle=False)
                log.info("validation FID: real-image statistics from %s", self.path)
            except (OSError, ValueError) as err:
                log.warning("%s: unreadable (%s); computing the real-image statistics again", self.path, err)

    def store(self, features: np.ndarray) -> None:
        self.features = features
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "wb") as f:
            np.save(f, features, allow_pickle=False)
        tmp.replace(self.path)
        log.info("validation FID: real-image statistics cached in %s", self.path)
