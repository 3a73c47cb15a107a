"""Every registered --dataset_mode keeps the contract the model and the loader rely on
(docs/ARCHITECTURE.md, "Runtime, batches, model, reporter"), built on a tiny generated set:
the item's keys, each image's channels, size and value range, the paths in order, and
``sample_sizes()`` agreeing with the items. ``shards`` is checked once per mode it can be made
from, against the pixels written into the source folder."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import pytest
import torch

from data import DATASETS, DataConfig, create_dataset
from data.shard_format import shard_layouts
from tests.image_files import noise_image
from tests.shard_helpers import make_shard_set

SIZES = [(16, 24), (24, 16)]   # (height, width) of sample 0 and 1: multiples of 4, kept by --preprocess none
OPTIONAL_KEYS = {"A_size", "A_bits", "B_bits"}


class TinySet(NamedTuple):
    nc: tuple[int, int]                    # (input_nc, output_nc) the mode reads it with
    a_pixels: list[np.ndarray] | None      # each sample's A as written (H, W, C) uint8; None: A is derived


def _aligned(root: Path) -> TinySet:
    halves = []
    for i, (h, w) in enumerate(SIZES):
        pixels = noise_image(root / "train" / f"{i:03d}.png", (2 * w, h), seed=i)
        halves.append(pixels[:, :w])
    return TinySet((3, 3), halves)


def _single(root: Path) -> TinySet:
    return TinySet((3, 3), [noise_image(root / "train" / f"{i:03d}.png", (w, h), seed=i)
                            for i, (h, w) in enumerate(SIZES)])


def _paired(root: Path) -> TinySet:
    a = [noise_image(root / "A" / "train" / f"{i:03d}.png", (w, h), seed=i) for i, (h, w) in enumerate(SIZES)]
    for i, (h, w) in enumerate(SIZES):
        noise_image(root / "B" / "train" / f"{i:03d}.png", (w, h), seed=10 + i)
    return TinySet((3, 3), a)


def _colorization(root: Path) -> TinySet:
    _single(root)
    return TinySet((1, 2), None)


# How to write a tiny set that each mode reads from a folder. A new mode adds its maker here;
# test_every_registered_mode_is_checked refuses a mode that is in neither list.
FOLDER_SETS: dict[str, Callable[[Path], TinySet]] = {
    "aligned": _aligned, "single": _single, "paired": _paired, "colorization": _colorization,
}
# Modes that read what another mode's folder was turned into, with the source modes they take.
DERIVED_SETS: dict[str, Callable[[], list[str]]] = {"shards": lambda: list(shard_layouts())}

CASES = [(mode, mode) for mode in FOLDER_SETS] + [(mode, source) for mode, sources in DERIVED_SETS.items()
                                                  for source in sources()]


def test_every_registered_mode_is_checked() -> None:
    assert sorted({mode for mode, _ in CASES}) == sorted(DATASETS.names())
    assert set(DERIVED_SETS["shards"]()) <= set(FOLDER_SETS)


def _build(mode: str, source: str, tmp_path: Path):
    tiny = FOLDER_SETS[source](tmp_path / "folder")
    root = tmp_path / "folder" if mode == source else make_shard_set(tmp_path / "folder", tmp_path / mode, source)
    cfg = DataConfig(dataroot=root, phase="train", input_nc=tiny.nc[0], output_nc=tiny.nc[1], preprocess="none",
                     size_divisor=4, no_flip=True)
    return create_dataset(mode, cfg), tiny


@pytest.mark.parametrize("mode, source", CASES, ids=[m if m == s else f"{m}-from-{s}" for m, s in CASES])
def test_each_mode_gives_the_documented_items(mode: str, source: str, tmp_path: Path) -> None:
    dataset, tiny = _build(mode, source, tmp_path)
    assert len(dataset) == len(SIZES) == len(dataset.paths)
    sizes = dataset.sample_sizes() if hasattr(dataset, "sample_sizes") else None
    assert sizes is None or [tuple(s) for s in sizes] == SIZES
    for i, (h, w) in enumerate(SIZES):
        item = dataset[i]
        assert {"A", "A_paths"} <= set(item) and ("B" in item) == ("B_paths" in item)
        assert set(item) - {"A", "B", "A_paths", "B_paths"} <= OPTIONAL_KEYS
        for side, channels in zip("AB", tiny.nc):
            if side in item:
                image = item[side]
                assert image.dtype == torch.float32 and image.shape == (channels, h, w)
                assert image.min() >= -1 and image.max() <= 1
                assert isinstance(item[f"{side}_paths"], str) and Path(item[f"{side}_paths"]).stem == f"{i:03d}"
            if f"{side}_bits" in item:
                assert item[f"{side}_bits"] == 8
        assert item["A_paths"] == str(dataset.paths[i])
        if "A_size" in item:
            assert item["A_size"].tolist() == [h, w]
        if tiny.a_pixels is not None:
            # [-1, 1] back to the 8-bit values written: the same pixels from a folder or its shards
            written = torch.from_numpy(tiny.a_pixels[i]).permute(2, 0, 1).float()
            assert torch.equal(((item["A"] + 1) * 127.5).round(), written)


def test_a_mode_is_sharded_by_the_layout_on_its_registry_entry(monkeypatch: pytest.MonkeyPatch,
                                                                tmp_path: Path) -> None:
    """make_shards and the shards reader follow the entry alone: no second table to edit."""
    from data.aligned import AlignedDataset
    from data.shard_format import ONE_FILE
    from datasets.make_shards import build_parser
    from util.registry import Entry

    monkeypatch.setitem(DATASETS._entries, "aligned_too", Entry("aligned_too", AlignedDataset,
                                                                meta={"shard_layout": ONE_FILE}))
    assert build_parser().parse_args(["--dataroot", "x", "--output", "y", "--dataset_mode", "aligned_too"])
    tiny = _aligned(tmp_path / "folder")
    dataset = create_dataset("shards", DataConfig(dataroot=make_shard_set(tmp_path / "folder", tmp_path / "out",
                                                                          "aligned_too"),
                                                  preprocess="none", size_divisor=4, no_flip=True))
    written = torch.from_numpy(tiny.a_pixels[1]).permute(2, 0, 1).float()
    assert torch.equal(((dataset[1]["A"] + 1) * 127.5).round(), written)


def test_a_mode_without_a_layout_is_refused_in_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from data.aligned import AlignedDataset
    from data import DataError
    from util.registry import Entry

    monkeypatch.setitem(DATASETS._entries, "no_layout", Entry("no_layout", AlignedDataset))
    _aligned(tmp_path / "folder")
    with pytest.raises(DataError) as err:
        make_shard_set(tmp_path / "folder", tmp_path / "out", "no_layout")
    assert str(err.value) == f"--dataset_mode no_layout cannot be written into shards (these can: " \
                             f"{', '.join(shard_layouts())})"
    assert not (tmp_path / "out").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["folder"]
