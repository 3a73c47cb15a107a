"""Combine folders of same-named A and B images into aligned A|B images for the `aligned` dataset.

    python datasets/combine_A_and_B.py --fold_A A --fold_B B --fold_AB AB

Layout: `A/train/1.jpg` pairs with `B/train/1.jpg` and becomes `AB/train/1.jpg`, A on the left and
B on the right. Every subfolder of --fold_A is a split (train, val, test, ...) and must exist in
--fold_B too. When --fold_A has no subfolders, it is one split and the pairs go straight into
--fold_AB. Images pair up by their path inside the split without the extension (A `1.jpg` with
B `1.png`, A `day/1.jpg` with B `day/1.png`), as --dataset_mode paired pairs them; the output
keeps A's file name and subfolders (`AB/train/day/1.jpg`). With --use_AB, `X_A.ext` in --fold_A pairs with `X_B.*` in --fold_B
(which may be the same folder) and becomes `X.ext`.

Everything is checked before anything is written: missing folders, unmatched names and pairs of
different sizes each stop the tool with one line that names the files.

Runs as a script once the project is installed (`pip install -e .`, which install.sh does), or
from the project root as `python -m datasets.combine_A_and_B`. Images are decoded to 8 bits by the
loader's own converter (data/image_io.py: 16-bit scaled and rounded, transparency onto white).
"""
from __future__ import annotations

import argparse
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from PIL import Image

from data.image_io import DataError, has_image_extension, list_files, read_header, to_mode
from data.pixels import open_eight_bit_as
from util.argtypes import int_range
from util.errors import UserError

SHOWN_NAMES = 5   # how many unmatched names an error message lists


class CombineError(UserError):
    """Bad input for combining; the message is one line that names the file or folder."""


@dataclass(frozen=True)
class Pair:
    path_A: Path
    path_B: Path
    path_AB: Path


def _images(folder: Path, suffix: str = "") -> dict[str, Path]:
    """Image files under `folder`, subfolders included (the loader's own listing), keyed by their
    path inside `folder` without the extension and without `suffix` (e.g. '_A')."""
    found: dict[str, Path] = {}
    try:
        paths = list_files(folder)
    except DataError as error:   # a link loop or an unreadable subfolder
        raise CombineError(str(error)) from None
    for path in paths:
        if not path.stem.endswith(suffix):
            continue
        relative = path.relative_to(folder)
        key = str(relative.with_name(path.stem[:len(path.stem) - len(suffix)]))
        if key in found:
            raise CombineError(f"{found[key]} and {path} have the same name; cannot tell which to pair")
        found[key] = path
    return found


def _splits(fold_A: Path) -> list[str]:
    """Subfolder names of fold_A, or [''] when fold_A is itself the only split."""
    visible = [p for p in fold_A.iterdir() if not p.name.startswith(".")]
    subfolders = sorted(p.name for p in visible if p.is_dir())
    if subfolders and any(p.is_file() and has_image_extension(p) for p in visible):
        raise CombineError(f"{fold_A} holds both images and subfolders ({', '.join(subfolders)}); "
                           "put all images into split subfolders, or none")
    return subfolders or [""]


def _few(names: Sequence[str]) -> str:
    shown = ", ".join(names[:SHOWN_NAMES])
    return shown + (f" and {len(names) - SHOWN_NAMES} more" if len(names) > SHOWN_NAMES else "")


def _size(path: Path) -> tuple[int, int]:
    try:
        return read_header(path)   # the loader's header reader: TIFFs only tifffile opens included
    except DataError as error:
        raise CombineError(str(error)) from None


def plan_pairs(fold_A: Path, fold_B: Path, fold_AB: Path, num_imgs: int | None = None,
               use_AB: bool = False) -> list[Pair]:
    """Check the input folders and return the pairs to combine, or raise CombineError."""
    for option, folder in (("--fold_A", fold_A), ("--fold_B", fold_B)):
        if not folder.is_dir():
            raise CombineError(f"{option} {folder} is not a folder")
    suffix_A, suffix_B = ("_A", "_B") if use_AB else ("", "")
    pairs: list[Pair] = []
    for split in _splits(fold_A):
        split_A, split_B = fold_A / split, fold_B / split
        if not split_B.is_dir():
            raise CombineError(f"split '{split}' is in --fold_A but {split_B} is not a folder")
        images_A, images_B = _images(split_A, suffix_A), _images(split_B, suffix_B)
        if not images_A:
            hint = " named *_A.*" if use_AB else ""
            raise CombineError(f"no images{hint} in {split_A}")
        only_A = sorted(images_A.keys() - images_B.keys())
        only_B = sorted(images_B.keys() - images_A.keys())
        if only_A:
            raise CombineError(f"{len(only_A)} image(s) in {split_A} have no same-named image in {split_B}: "
                               + _few([str(images_A[k].relative_to(split_A)) for k in only_A]))
        if only_B:
            raise CombineError(f"{len(only_B)} image(s) in {split_B} have no same-named image in {split_A}: "
                               + _few([str(images_B[k].relative_to(split_B)) for k in only_B]))
        for key in sorted(images_A)[:num_imgs]:
            path_A, path_B = images_A[key], images_B[key]
            size_A, size_B = _size(path_A), _size(path_B)
            if size_A != size_B:
                # The aligned loader splits at the middle, so A and B must be the same size.
                raise CombineError(f"size mismatch: {path_A} is {size_A[0]}x{size_A[1]} but "
                                   f"{path_B} is {size_B[0]}x{size_B[1]}")
            pairs.append(Pair(path_A, path_B, fold_AB / split / f"{key}{path_A.suffix}"))
    return pairs


def combine_pair(pair: Pair) -> str | None:
    """Write one A|B image; return an error line instead of raising, so pool workers report cleanly."""
    try:
        image_A, image_B = open_eight_bit_as(pair.path_A), open_eight_bit_as(pair.path_B)
        # Two gray halves stay gray; gray with colour becomes RGB so the halves can be pasted together.
        mode = "L" if image_A.mode == image_B.mode == "L" else "RGB"
        image_A, image_B = to_mode(image_A, mode, pair.path_A), to_mode(image_B, mode, pair.path_B)
        width, height = image_A.size
        combined = Image.new(mode, (2 * width, height))
        combined.paste(image_A, (0, 0))
        combined.paste(image_B, (width, 0))
    except DataError as error:   # the message starts with the file's path
        return str(error)
    try:
        pair.path_AB.parent.mkdir(parents=True, exist_ok=True)
        combined.save(pair.path_AB, quality=95)   # quality only matters for JPEG
    except (OSError, ValueError) as error:
        return f"cannot write {pair.path_AB}: {error}"
    return None


def combine_folders(fold_A: Path, fold_B: Path, fold_AB: Path, num_imgs: int | None = None,
                    use_AB: bool = False, workers: int = 1) -> int:
    """Combine all pairs; return how many were written. Raises CombineError on bad input."""
    pairs = plan_pairs(Path(fold_A), Path(fold_B), Path(fold_AB), num_imgs, use_AB)
    if workers > 1 and len(pairs) > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            errors = list(pool.map(combine_pair, pairs, chunksize=16))
    else:
        errors = [combine_pair(pair) for pair in pairs]
    failures = [e for e in errors if e is not None]
    if failures:
        more = f" (and {len(failures) - 1} more failures)" if len(failures) > 1 else ""
        raise CombineError(failures[0] + more)
    return len(pairs)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Combine same-named A and B images into aligned A|B images (A left, B right).")
    parser.add_argument("--fold_A", type=Path, required=True, help="folder of A images, with split subfolders or not")
    parser.add_argument("--fold_B", type=Path, required=True, help="folder of B images, same layout and names")
    parser.add_argument("--fold_AB", type=Path, required=True, help="output folder")
    parser.add_argument("--num_imgs", type=int_range(1), default=None, help="at most this many pairs per split")
    parser.add_argument("--use_AB", action="store_true", help="pair X_A.* with X_B.*, write X.*")
    parser.add_argument("--no_multiprocessing", action="store_true", help="combine in this process only")
    args = parser.parse_args(argv)
    workers = 1 if args.no_multiprocessing else min(os.cpu_count() or 1, 8)
    try:
        count = combine_folders(args.fold_A, args.fold_B, args.fold_AB, args.num_imgs, args.use_AB, workers)
    except CombineError as error:
        print(f"combine_A_and_B: error: {error}", file=sys.stderr)
        return 1
    except OSError as error:   # e.g. an unreadable folder
        print(f"combine_A_and_B: error: {error.filename}: {error.strerror}", file=sys.stderr)
        return 1
    print(f"wrote {count} aligned images to {args.fold_AB}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
