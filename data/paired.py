"""Pairs from two folders per phase, matched by file name, with no preparation step.

Either layout is read (the first one found):
  ``<dataroot>/A/<phase>/`` + ``<dataroot>/B/<phase>/``   or   ``<dataroot>/<phase>_A/`` + ``<phase>_B/``
Several folders on one side (``A1``, ``A2``, ... or ``<phase>_A1``, ...) stack into the
channels of one image, in sorted order: gray + RGB -> 4 channels. Files pair up by their
path inside the folder without the extension (``x.png`` with ``x.tif``).

Everything that can be checked from headers is checked at start-up, and each problem is one
:class:`DataError` line naming the first few files: names without a partner, sizes that
differ within a pair, channel counts that cannot give ``--input_nc`` / ``--output_nc``.
Files keep their bit depth (data/pixels.py); files stacked into one image and mixing depths
are brought to the widest among them (8 < 16 < floating point).

A sample's files are named by field as on disk, before ``--direction`` swaps the sides: ``A``
(or ``A1``, ``A2``, ...) and ``B`` (or ``B1``, ...). A shard set (data/shard_format.py) stores
them under these fields; its store hands the decoder a sample's files by field, where the
folder store hands it a path. Read from shards, what the start-up checks cover (pairing,
sizes, channels) was checked when the shards were made, and a file that contradicts the
reading options is reported when it is decoded.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Callable, Mapping

import torch

from data.aligned import check_min_size
from data.config import DataConfig
from data.headers import Header, header_memo
from data.image_io import DataError, ImageSource, list_files
from data.image_store import ImageStore, StoreFactory
from data.pixels import bits_of, common_depth, native_channels, read_pixels
from data.store_dataset import StoreDataset
from data.transforms import SampleKey, augment, split_key, to_signed_unit

logger = logging.getLogger(__name__)

SHOWN = 3   # files named in one error line
SIDES = ("A", "B")


def _listing(paths: list[str]) -> str:
    more = f" and {len(paths) - SHOWN} more" if len(paths) > SHOWN else ""
    return ", ".join(paths[:SHOWN]) + more


def side_folders(dataroot: Path, phase: str, side: str) -> list[Path]:
    """The folders of one side ("A" or "B") in either layout, sorted by their number."""
    if not dataroot.is_dir():
        raise DataError(f"{dataroot}: --dataroot does not exist or is not a folder")
    pattern = re.compile(rf"{side}(\d*)$")
    layouts = ([(m, d / phase) for d in dataroot.iterdir() if (m := pattern.match(d.name))],
               [(m, d) for d in dataroot.iterdir() if (m := re.match(rf"{re.escape(phase)}_{pattern.pattern}", d.name))])
    for found in layouts:
        found = [(m, d) for m, d in found if d.is_dir()]
        if not found:
            continue
        numbers = [m.group(1) for m, _ in found]
        if "" in numbers and len(found) > 1:
            raise DataError(f"{dataroot}: both {side} and numbered {side}1, {side}2 ... folders for phase "
                            f"'{phase}'; keep one kind")
        return [d for _, d in sorted(zip(numbers, (d for _, d in found)), key=lambda t: int(t[0] or 0))]
    raise DataError(f"{dataroot}: no {side} folder for phase '{phase}' (expected {dataroot}/{side}/{phase}/ "
                    f"or {dataroot}/{phase}_{side}/)")


def side_fields(side: str, files: list[ImageSource]) -> dict[str, ImageSource]:
    """One side's files by field: ``A`` alone, ``A1``, ``A2``, ... when they stack."""
    if len(files) == 1:
        return {side: files[0]}
    return {f"{side}{number}": f for number, f in enumerate(files, 1)}


def fields_by_side(fields: Mapping[str, ImageSource]) -> dict[str, list[ImageSource]]:
    """The inverse of :func:`side_fields` on both sides: each side's files in stacking order."""
    sides: dict[str, list[tuple[int, ImageSource]]] = {side: [] for side in SIDES}
    for field, source in fields.items():
        if field[:1] not in sides or not (field[1:].isdigit() or field[1:] == ""):
            raise DataError(f"{source}: field '{field}' is none of A, A1, A2, ..., B, B1, ...")
        sides[field[:1]].append((int(field[1:] or 0), source))
    for side, found in sides.items():
        if not found:
            raise DataError(f"{next(iter(fields.values()))}: the sample has no {side} file")
    return {side: [source for _, source in sorted(found, key=lambda t: t[0])] for side, found in sides.items()}


def files_by_stem(folder: Path) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for path in list_files(folder):
        stem = str(path.relative_to(folder).with_suffix(""))
        if stem in files:
            raise DataError(f"{path}: same name as {files[stem]}; a pair is matched by name, keep one of them")
        files[stem] = path
    if not files:
        raise DataError(f"{folder}: no images")
    return files


def has_phase(dataroot: Path, phase: str) -> bool:
    """Whether ``dataroot`` holds A folders for ``phase`` in either layout."""
    try:
        side_folders(dataroot, phase, "A")
    except DataError:
        return False
    return True


def stored_channels(dataroot: Path, phase: str) -> tuple[int, int]:
    """(A, B) channels as the first pair on disk holds them, stacked folders added up: the counts
    that read the set without converting anything (datasets/make_shards.py builds it so)."""
    counts = []
    for side in SIDES:
        firsts = [min(files_by_stem(folder).items())[1] for folder in side_folders(dataroot, phase, side)]
        counts.append(sum(native_channels(path) for path in firsts))
    return counts[0], counts[1]


class PairedDataset(StoreDataset):
    """Item ``{"A", "B", "A_paths", "B_paths", "A_bits", "B_bits", "A_size"}``; ``A_size`` is
    the stored (height, width), which test.py crops padded results back to."""

    def __init__(self, cfg: DataConfig, store: StoreFactory | None = None) -> None:
        self.cfg = cfg
        self.parts: dict[str, list[list[Path]]] | None = None   # folders only: per side, each row's files
        if store is not None:
            self.store = store(self._decode, self._check)
            return
        sides = {s: side_folders(cfg.dataroot, cfg.phase, s) for s in ("A", "B")}
        if cfg.direction == "BtoA":
            sides = {"A": sides["B"], "B": sides["A"]}
        self.folders = sides
        listings = {s: [files_by_stem(f) for f in folders] for s, folders in sides.items()}
        stems = self._matched_stems([m for s in ("A", "B") for m in listings[s]],
                                    [f for s in ("A", "B") for f in sides[s]])
        header = header_memo()   # every check below reads a file's header from one open of it
        if cfg.skip_bad_images:
            # Before the checks below, which read every header and would stop at a bad file.
            stems = self._readable_stems(stems, [m for s in ("A", "B") for m in listings[s]], cfg.max_dataset_size,
                                         header)
        elif cfg.max_dataset_size is not None:
            stems = stems[:cfg.max_dataset_size]
        self.parts = {s: [[m[stem] for m in listings[s]] for stem in stems] for s in ("A", "B")}
        self._check_sizes(header)
        self._check_channels("A", cfg.input_nc, "--input_nc", header)
        self._check_channels("B", cfg.output_nc, "--output_nc", header)
        self._row = {parts[0]: i for i, parts in enumerate(self.parts["A"])}
        self.store = ImageStore(sides["A"][0], self._decode, self._check, skip_bad=cfg.skip_bad_images,
                                cache=cfg.cache, files=[parts[0] for parts in self.parts["A"]],
                                size_of=lambda path: header(path).size)

    @staticmethod
    def _matched_stems(listings: list[dict[str, Path]], folders: list[Path]) -> list[str]:
        common = set.intersection(*(set(m) for m in listings))
        for listing, folder in zip(listings, folders):
            alone = sorted(stem for stem in listing if stem not in common)
            if alone:
                others = ", ".join(str(f) for f in folders if f != folder)
                raise DataError(f"{folder}: {len(alone)} file(s) without a partner of the same name in {others}: "
                                f"{_listing([listing[s].name for s in alone])}")
        return sorted(common)

    def _readable_stems(self, stems: list[str], listings: list[dict[str, Path]], limit: int | None,
                        header: Callable[[Path], Header]) -> list[str]:
        """The stems (at most ``limit``) whose files' headers all read, each other one left out
        with a warning naming its bad file."""
        kept: list[str] = []
        for stem in stems:
            if limit is not None and len(kept) >= limit:
                break
            try:
                for listing in listings:
                    header(listing[stem])
            except DataError as err:
                logger.warning("skipping bad image: %s", err)
                continue
            kept.append(stem)
        if not kept:
            raise DataError(f"{self.folders['A'][0]}: no usable images (every pair has a bad file)")
        return kept

    def _check_sizes(self, header: Callable[[Path], Header]) -> None:
        """Every pair's files have one size; pairs whose files carry different EXIF orientation
        tags are named (datasets read pixels as stored, data/orientation.py): in the size error
        when they explain it, else in one warning, since a viewer shows such a pair turned."""
        wrong, turned, turned_wrong = [], [], []
        for a_parts, b_parts in zip(self.parts["A"], self.parts["B"]):
            files = a_parts + b_parts
            sizes = [(p, header(p).size) for p in files]
            first = sizes[0][1]
            mismatched = [f"{p} is {w}x{h}, {sizes[0][0].name} {first[0]}x{first[1]}"
                          for p, (w, h) in sizes[1:] if (w, h) != first]
            wrong += mismatched
            tags = [header(p).orientation for p in files]
            if len(set(tags)) > 1:
                tagged = ", ".join(f"{p.name} {tag}" for p, tag in zip(files, tags))
                (turned_wrong if mismatched else turned).append(tagged)
        if wrong:
            hint = (f"; their EXIF orientation tags differ ({_listing(turned_wrong)}): datasets read pixels as "
                    "stored, ignoring the tag, so save both files upright (PIL.ImageOps.exif_transpose)"
                    if turned_wrong else "")
            raise DataError(f"pairs of different sizes (width x height): {_listing(wrong)}{hint}")
        if turned:
            logger.warning("%d pair(s) whose files carry different EXIF orientation tags (%s): datasets read pixels "
                           "as stored, ignoring the tag, so where a viewer shows such a pair aligned it trains "
                           "turned; save both files upright (PIL.ImageOps.exif_transpose)", len(turned),
                           _listing(turned))

    def _check_channels(self, side: str, wanted: int, option: str, header: Callable[[Path], Header]) -> None:
        """Every file's channels, from its header, against what decoding it will need."""
        layouts = [[header(p).channels for p in parts] for parts in zip(*self.parts[side])]
        counts = [[layout.count for layout in column] for column in layouts]
        if len(counts) == 1:
            bad = [f"{parts[0].name} has {layout.count}{' (with alpha)' if layout.alpha else ''}"
                   for parts, layout in zip(self.parts[side], layouts[0]) if not layout.gives(wanted)]
            if bad:
                raise DataError(f"{self.folders[side][0]}: channel counts that cannot give {option} {wanted}: "
                                f"{_listing(bad)}")
            return
        bad = []
        for row, parts in enumerate(self.parts[side]):
            total = sum(column[row] for column in counts)
            if total != wanted:
                bad.append(f"{' + '.join(p.name for p in parts)} stack to {total}")
        if bad:
            raise DataError(f"{side} folders {', '.join(str(f) for f in self.folders[side])}: channels that do "
                            f"not add up to {option} {wanted}: {_listing(bad)}")

    def fields(self, index: int) -> dict[str, ImageSource]:
        """Sample ``index``'s files by field, as on disk (before --direction swaps the sides)."""
        return self._row_fields(self._row[self.store.paths[index]])

    def _row_fields(self, row: int) -> dict[str, ImageSource]:
        assert self.parts is not None
        network = {side: self.parts[side][row] for side in SIDES}
        on_disk = {"A": network["B"], "B": network["A"]} if self.cfg.direction == "BtoA" else network
        return {**side_fields("A", on_disk["A"]), **side_fields("B", on_disk["B"])}

    def _check(self, path: ImageSource, width: int, height: int) -> None:
        check_min_size(self.cfg, path, width, height)

    def _side(self, parts: list[ImageSource], wanted: int, option: str) -> torch.Tensor:
        if len(parts) == 1:
            return read_pixels(parts[0], wanted, option)
        images = [read_pixels(p) for p in parts]   # stacked: each file's own channels
        for part, image in zip(parts[1:], images[1:]):
            if image.shape[-2:] != images[0].shape[-2:]:
                raise DataError(f"{part} is {image.shape[-1]}x{image.shape[-2]}, {parts[0]} "
                                f"{images[0].shape[-1]}x{images[0].shape[-2]}: stacked files must have one size")
        total = sum(im.shape[0] for im in images)
        if total != wanted:
            raise DataError(f"{' + '.join(map(str, parts))}: stack to {total} channels, not {option} {wanted}")
        return torch.cat(common_depth(images))

    def _decode(self, source: Path | Mapping[str, ImageSource]) -> tuple[torch.Tensor, torch.Tensor]:
        """A sample's (A, B) pixels from its first A file (a folder's store) or its files by field."""
        sides = fields_by_side(self._row_fields(self._row[source]) if isinstance(source, Path) else source)
        if self.cfg.direction == "BtoA":
            sides = {"A": sides["B"], "B": sides["A"]}
        a = self._side(sides["A"], self.cfg.input_nc, "--input_nc")
        b = self._side(sides["B"], self.cfg.output_nc, "--output_nc")
        if a.shape[-2:] != b.shape[-2:]:
            raise DataError(f"{sides['A'][0]} is {a.shape[-1]}x{a.shape[-2]}, {sides['B'][0]} "
                            f"{b.shape[-1]}x{b.shape[-2]}: a pair must have one size")
        return a, b

    def __getitem__(self, key: int | SampleKey) -> dict[str, torch.Tensor | str]:
        index, seed = split_key(key)
        a_pixels, b_pixels = self.store.load(index)
        a, b = augment(self.cfg, (a_pixels, b_pixels), seed)
        path_A = self.store.paths[index]
        # Shards keep one name a sample: the A file's.
        path_B = path_A if self.parts is None else self.parts["B"][self._row[path_A]][0]
        return {"A": to_signed_unit(a), "B": to_signed_unit(b), "A_paths": str(path_A), "B_paths": str(path_B),
                "A_bits": bits_of(a_pixels), "B_bits": bits_of(b_pixels),
                "A_size": torch.tensor(a_pixels.shape[-2:])}
