"""Write a dataset into tar shards for ``--dataset_mode shards``.

    python datasets/make_shards.py --dataroot datasets/facades --output shards/facades
    python datasets/make_shards.py --dataroot photos/ --dataset_mode colorization --output shards/photos \\
        --shard_mb 512 --phases train
    python datasets/make_shards.py --dataroot scans/ --dataset_mode paired --output shards/scans

Each phase (default: whichever of train, val, test --dataroot has) becomes ``<phase>-NNNNNN.tar``
shards and the index ``<phase>.json`` in --output. The samples are taken from the dataset the
project builds for --dataset_mode (the same files, order, --max_dataset_size and
--skip_bad_images), and each sample's files are stored unchanged under one key, so a pair
never splits and the shard set gives the same pixels as the folder. Serve --output over HTTP
(or copy it to any web or object store) and pass its URL as --dataroot to read it remotely.

Runs as a script or as ``python -m datasets.make_shards``.
"""
from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
from pathlib import Path
from typing import Callable, Sequence

from data import DataConfig, DataError, create_dataset
from data.colorization import INPUT_NC, OUTPUT_NC
from data.paired import has_phase, stored_channels
from data.shard_format import ShardLimits, index_name, shard_glob, shard_layouts, write_shards

DEFAULT_PHASES = ("train", "val", "test")
# (dataroot, phase) -> the channel counts a mode's set is read with here: those it insists on
# (colorization), or those its files hold (paired: stacked folders must add up). The other modes
# take any, and which files make a sample does not depend on them.
MODE_CHANNELS: dict[str, Callable[[Path, str], tuple[int, int]]] = {
    "colorization": lambda dataroot, phase: (INPUT_NC, OUTPUT_NC),
    "paired": stored_channels,
}
# (dataroot, phase) -> whether the set has that phase; by default a dataroot/<phase> folder.
MODE_PHASES: dict[str, Callable[[Path, str], bool]] = {"paired": has_phase}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataroot", type=Path, required=True, help="the dataset, as train.py reads it")
    p.add_argument("--dataset_mode", default="aligned", choices=list(shard_layouts()),
                   help="how the project reads --dataroot (default aligned)")
    p.add_argument("--output", type=Path, required=True, help="folder for the shards and their index")
    p.add_argument("--phases", nargs="+", default=None,
                   help="phases to write (default: those of train, val, test that --dataroot has; "
                        "else train, for a flat folder)")
    p.add_argument("--shard_mb", type=float, default=256.0,
                   help="close a shard once it holds this many MiB of image files (default 256)")
    p.add_argument("--samples_per_shard", type=int, default=100_000, help="and at most this many samples")
    p.add_argument("--max_dataset_size", type=int, default=None, help="write at most this many samples a phase")
    p.add_argument("--skip_bad_images", action="store_true",
                   help="leave out unreadable images (with a warning) instead of stopping")
    return p


def default_phases(dataroot: Path, mode: str = "aligned") -> list[str]:
    present = MODE_PHASES.get(mode, lambda root, phase: (root / phase).is_dir())
    found = [phase for phase in DEFAULT_PHASES if present(dataroot, phase)]
    return found or ["train"]


def make_shards(dataroot: Path, mode: str, output: Path, phases: Sequence[str], limits: ShardLimits,
                max_dataset_size: int | None = None, skip_bad_images: bool = False) -> dict[str, dict]:
    """Write each phase; return its index by phase.

    Every phase is written into a hidden folder beside ``output`` and moved in only once all are
    complete (the indexes last), so a failure in a later phase leaves ``output`` as it was, and
    the same command can simply be run again. The hidden folder has one fixed name per output,
    cleared at the start, so a killed run's copy of the set is removed by the next run rather
    than left behind (one run per output at a time).
    """
    _refuse_existing_indexes(output, phases, dataroot, mode)
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = staging_folder(output)
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        indexes = {}
        for phase in phases:
            input_nc, output_nc = MODE_CHANNELS.get(mode, lambda dataroot, phase: (3, 3))(dataroot, phase)
            # 'none' checks nothing about the size: the reading run's own options decide that.
            cfg = DataConfig(dataroot=dataroot, phase=phase, input_nc=input_nc, output_nc=output_nc,
                             preprocess="none", max_dataset_size=max_dataset_size, skip_bad_images=skip_bad_images)
            indexes[phase] = write_shards(create_dataset(mode, cfg), mode, dataroot, phase, staging, limits)
        output.mkdir(parents=True, exist_ok=True)
        for phase in phases:
            # Shards of a phase without an index are a killed run's: none may outlive this set.
            for stale in output.glob(shard_glob(phase)):
                stale.unlink()
        indexes_last = sorted(staging.iterdir(), key=lambda path: (path.suffix == ".json", path.name))
        for path in indexes_last:
            os.replace(path, output / path.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return indexes


def staging_folder(output: Path) -> Path:
    return output.parent / f".{output.name}.partial"


def _refuse_existing_indexes(output: Path, phases: Sequence[str], dataroot: Path, mode: str) -> None:
    """An index is never overwritten. When only some phases of the set are there (a run killed
    while moving its indexes in, or a set to extend), say which phases would complete it."""
    present = [phase for phase in phases if (output / index_name(phase)).exists()]
    if not present:
        return
    message = f"{output / index_name(present[0])}: already exists; choose another output folder"
    wanted = list(dict.fromkeys([*phases, *default_phases(dataroot, mode)]))
    missing = [phase for phase in wanted if not (output / index_name(phase)).exists()]
    if missing:
        message += f", or add the phases it lacks with --phases {' '.join(missing)}"
    raise DataError(message)


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = build_parser().parse_args(argv)
    try:
        if args.shard_mb <= 0 or args.samples_per_shard < 1:
            raise ValueError("--shard_mb and --samples_per_shard must be positive")
        if args.max_dataset_size is not None and args.max_dataset_size < 1:
            raise ValueError(f"--max_dataset_size must be positive, not {args.max_dataset_size}")
        limits = ShardLimits(max_samples=args.samples_per_shard, max_bytes=int(args.shard_mb * 2**20))
        indexes = make_shards(args.dataroot, args.dataset_mode, args.output,
                              args.phases or default_phases(args.dataroot, args.dataset_mode), limits,
                              args.max_dataset_size, args.skip_bad_images)
    except (DataError, ValueError, OSError) as err:
        print(f"make_shards: {err}", file=sys.stderr)
        return 2
    for phase, index in indexes.items():
        samples = sum(shard["nsamples"] for shard in index["shardlist"])
        size = sum(shard["filesize"] for shard in index["shardlist"])
        count = len(index["shardlist"])
        print(f"{phase}: {samples} samples in {count} shard{'s' * (count != 1)} ({size / 2**20:.1f} MiB), "
              f"index {args.output / (phase + '.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
