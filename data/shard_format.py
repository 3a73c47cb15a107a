"""The shard set format: tar shards of a dataset's original image files, and their JSON index.

A shard set for one phase is ``<phase>-000000.tar``, ``<phase>-000001.tar``, ... and the index
``<phase>.json`` beside them. The tars follow the WebDataset convention: the files of one
sample share a key (``00000042.image.jpg``), so a pair never straddles two shards. The index is
a wids dataset description (``wids_version``, ``shardlist`` with each shard's ``nsamples``),
which is what lets the reader (data/shards.py) fetch sample *i* directly, plus a ``pix2pix``
section: the format version, the dataset mode the files are read as, each sample's name and
(since version 2) each sample's stored (height, width), read from the header of its first
file, which is what batching by size needs before anything is decoded. Since version 3 each
shard's entry also holds the ``sha256`` of its bytes: a cached copy of a shard read from a URL
is checked against it, since a set rewritten at the same URL often has shards of the same size
(tar pads to 10 KiB records).

The files are stored as they were (JPEG stays JPEG): the reader decodes them with the same
code as the folder set, so both give the same pixels, and the shards are no larger than the
folders. Which files make a sample, and how the dataset decodes them, is a :class:`ShardLayout`
stated on the dataset mode's registry entry.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch.utils.data import Dataset
from webdataset import TarWriter

from data.image_io import DataError, ImageBlob, read_header
from data.image_store import Decoder
from data.registry import DATASETS

FORMAT_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)   # 1: no sizes; 2: no shard digests
SECTION = "pix2pix"
DIGEST = "sha256"   # the key of a shard's digest in its shardlist entry (wids ignores it)


def file_digest(path: Path) -> str:
    """The hex digest of a file's bytes, as the index records it."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, DIGEST).hexdigest()


def index_name(phase: str) -> str:
    return f"{phase}.json"


def shard_name(phase: str, number: int) -> str:
    return f"{phase}-{number:06d}.tar"


def shard_glob(phase: str) -> str:
    """A pattern that matches every shard name of ``phase``."""
    return f"{phase}-{'[0-9]' * 6}.tar"


def sample_key(index: int) -> str:
    # No dot: WebDataset splits a member name into key and field at the first dot.
    return f"{index:08d}"


@dataclass(frozen=True)
class ShardLayout:
    # (dataset, index) -> {field: file}: the files of one sample, field names without dots.
    files: Callable[[Any, int], dict[str, Path]]
    # (the dataset's decoder, {field: bytes}) -> the tensors the dataset's store.load gives.
    decode: Callable[[Decoder, dict[str, ImageBlob]], tuple[torch.Tensor, ...]]


def _one_file(dataset: Any, index: int) -> dict[str, Path]:
    return {"image": Path(dataset.paths[index])}


def _decode_one_file(decode: Decoder, members: dict[str, ImageBlob]) -> tuple[torch.Tensor, ...]:
    return decode(members["image"])


def _pair_files(dataset: Any, index: int) -> dict[str, Path]:
    return dataset.fields(index)


def _decode_pair(decode: Decoder, members: dict[str, ImageBlob]) -> tuple[torch.Tensor, ...]:
    return decode(members)   # type: ignore[arg-type]  # the paired decoder takes the files by field


ONE_FILE = ShardLayout(_one_file, _decode_one_file)      # the sample's one file as it is (A|B, a photo)
PAIR_FILES = ShardLayout(_pair_files, _decode_pair)    # each file under A (or A1, A2, ...) and B (or B1, ...)


def shard_layouts() -> dict[str, ShardLayout]:
    """The dataset modes a shard set can be made from, with their layouts: each mode states its
    own as ``shard_layout=`` on its ``DATASETS`` entry (data/__init__.py), so a new mode is
    sharded by adding it there, and one without it cannot be."""
    return {e.name: e.meta["shard_layout"] for e in DATASETS if e.meta.get("shard_layout") is not None}


def shard_layout(mode: str) -> ShardLayout:
    layouts = shard_layouts()
    if mode not in layouts:
        raise DataError(f"--dataset_mode {mode} cannot be written into shards (these can: {', '.join(layouts)})")
    return layouts[mode]


@dataclass(frozen=True)
class ShardLimits:
    max_samples: int     # samples per shard, at most
    max_bytes: int       # a shard is closed once it holds this many bytes (one sample may go over)

    def __post_init__(self) -> None:
        if self.max_samples < 1 or self.max_bytes < 1:
            raise ValueError("shard limits must be positive")


def _display_name(path: Path, root: Path) -> str:
    """``path`` relative to the dataroot as the user sees it: links are not resolved, since a
    data set assembled from linked folders would otherwise lose its folders in the names."""
    try:
        return str(Path(os.path.abspath(path)).relative_to(os.path.abspath(root)))
    except ValueError:
        return path.name


def write_shards(dataset: Dataset, mode: str, root: Path, phase: str, out_dir: Path,
                 limits: ShardLimits) -> dict[str, Any]:
    """Write every sample of ``dataset`` (built with ``--dataset_mode mode`` from ``root``) into
    shards in ``out_dir``, then the index; return the index.

    All files go to a hidden folder first and are moved in only once every shard is complete,
    the index last, so a failed run leaves no shard set behind that looks usable.
    """
    layout = shard_layout(mode)
    out_dir.mkdir(parents=True, exist_ok=True)
    if (out_dir / index_name(phase)).exists():
        raise DataError(f"{out_dir / index_name(phase)}: already exists; choose another output folder")
    staging = out_dir / f".{phase}.partial"
    shutil.rmtree(staging, ignore_errors=True)   # what a killed earlier run left
    staging.mkdir()
    try:
        shards, names, sizes = _write_tars(dataset, layout, root, phase, staging, limits)
        index = {"wids_version": 1, "name": phase, "shardlist": shards,
                 SECTION: {"format_version": FORMAT_VERSION, "dataset_mode": mode, "phase": phase,
                           "names": names, "sizes": sizes}}
        (staging / index_name(phase)).write_text(json.dumps(index, indent=1) + "\n")
        for shard in shards:
            os.replace(staging / shard["url"], out_dir / shard["url"])
        os.replace(staging / index_name(phase), out_dir / index_name(phase))
    finally:
        for leftover in staging.iterdir():
            leftover.unlink()
        staging.rmdir()
    return index


def _write_tars(dataset: Dataset, layout: ShardLayout, root: Path, phase: str, folder: Path,
                limits: ShardLimits) -> tuple[list[dict[str, Any]], list[str], list[list[int]]]:
    shards: list[dict[str, Any]] = []
    names: list[str] = []
    sizes: list[list[int]] = []   # (height, width)
    writer: TarWriter | None = None
    count = size = 0
    for index in range(len(dataset)):   # type: ignore[arg-type]
        if writer is None or count >= limits.max_samples or size >= limits.max_bytes:
            if writer is not None:
                writer.close()
            shards.append({"url": shard_name(phase, len(shards)), "nsamples": 0})
            # A fixed mtime makes the same data give the same bytes.
            writer = TarWriter(str(folder / shards[-1]["url"]), encoder=False, mtime=0)
            count = size = 0
        files = layout.files(dataset, index)
        sample: dict[str, Any] = {"__key__": sample_key(index)}
        for field, path in files.items():
            if "." in field:
                raise ValueError(f"shard field {field!r} must not contain a dot")
            data = path.read_bytes()
            sample[field + path.suffix.lower()] = data
            size += len(data)
        writer.write(sample)
        first = next(iter(files.values()))
        names.append(_display_name(first, root))
        width, height = read_header(first)
        sizes.append([height, width])
        count += 1
        shards[-1]["nsamples"] = count
    if writer is not None:
        writer.close()
    for shard in shards:
        shard["filesize"] = (folder / shard["url"]).stat().st_size
        shard[DIGEST] = file_digest(folder / shard["url"])
    return shards, names, sizes
