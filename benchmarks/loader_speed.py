"""The data loader alone, next to the training step it feeds: how many workers a step rate needs.

    python benchmarks/loader_speed.py --dataroot ../shared/datasets/facades
    python benchmarks/loader_speed.py --sizes 256 --workers 1,2 --images 32 --out /tmp/l.jsonl

For each crop size, source (the folder, tar shards of it, the folder with --cache_dataset) and
file format (facades' own JPEGs; the same pairs re-saved as PNG): the CPU time one sample costs
a loader worker (aligned pair read, decoded, resized to load = crop + crop/8, cropped, flipped;
one thread, as in a worker) and of each stage of it, and the wall-clock images/s of train.py's
loader (batch 1) with 1, 2 and 4 workers, taken once the batches prefetched during worker
start-up are taken (start-up, and for the cache the decoding of everything, are not in it).
Then the steps/s of a default training step at the same size (unet_256, batch 1, train.py's
defaults, with --amp auto's answer pinned to bf16-where-native instead of probed), in the same
run.

A worker needs (steps/s x batch size x CPU ms per image / 1000) of a core, so that many
workers, rounded up, on cores of their own, keep up with the step; the wall rates show what a
shared machine actually delivered.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings
from pathlib import Path
from typing import Iterator, Sequence

# As train.py does before torch loads: how OpenMP threads wait (on a busy machine a spinning
# team turned a step many times slower) and freed memory kept for the next step.
from util.allocator import keep_freed_memory  # noqa: E402
from util.omp_env import set_omp_wait_policy  # noqa: E402

set_omp_wait_policy()
keep_freed_memory()

import torch  # noqa: E402
from PIL import Image  # noqa: E402

from benchmarks.common import ROOT, VARIANTS, build_model, emit, load_average, machine_name, median  # noqa: E402

from data import DataConfig, create_dataset  # noqa: E402
from data.aligned import AlignedDataset  # noqa: E402
from data.image_io import list_files  # noqa: E402
from data.image_ops import resize_bicubic  # noqa: E402
from data.loader import create_dataloader, set_loader_epoch  # noqa: E402
from data.shard_format import ShardLimits  # noqa: E402
from data.transforms import SampleKey, sample_seed, to_signed_unit  # noqa: E402
from datasets.make_shards import make_shards  # noqa: E402
from engine.amp_auto import PIN_ENV  # noqa: E402
from engine.distributed import Runtime  # noqa: E402
from options.base import OneLineParser  # noqa: E402
from util.argtypes import positive_int  # noqa: E402

SOURCES = ("folder", "shards", "cache")
BUSY_NOTE = "shared machine, busy with other jobs while measured (see load_average)"


def bench_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="loader_speed.py", description=__doc__.splitlines()[0])
    p.add_argument("--dataroot", type=Path, default=ROOT / "datasets" / "facades",
                   help="an aligned set with a train/ folder (default datasets/facades)")
    p.add_argument("--sizes", default="256,512", help="crop sizes, comma-separated")
    p.add_argument("--workers", default="1,2,4", help="loader worker counts, comma-separated")
    p.add_argument("--formats", default="jpeg,png", help="jpeg (the files as they are) and/or png")
    # At least one of each: a rate over none is no measurement (it printed 'nan steps/s').
    p.add_argument("--images", type=positive_int, default=32, help="images timed per loader measurement")
    p.add_argument("--steps", type=positive_int, default=2, help="timed training steps per size (after 1 warm-up)")
    p.add_argument("--out", default=None, help="also append the JSON lines to this file")
    return p


def int_list(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def prepare(dataroot: Path, work: Path, formats: Sequence[str], count: int) -> dict[str, Path]:
    """A train/ folder of ``count`` pairs per format, and shards made from each."""
    originals = [p for p in list_files(dataroot / "train")][:count]
    roots: dict[str, Path] = {}
    for fmt in formats:
        folder = work / fmt / "train"
        folder.mkdir(parents=True)
        for path in originals:
            if fmt == "png":
                Image.open(path).save(folder / (path.stem + ".png"))
            else:
                (folder / path.name).symlink_to(path.resolve())
        roots[fmt] = folder.parent
        make_shards(roots[fmt], "aligned", work / f"{fmt}_shards", ["train"],
                    ShardLimits(max_samples=32, max_bytes=2**30))
    return roots


def loader_rate(cfg: DataConfig, mode: str, workers: int, images: int) -> float:
    """Wall-clock images/s of the loader train.py builds (batch 1, shuffled)."""
    dataset = create_dataset(mode, cfg)
    loader = create_dataloader(dataset, batch_size=1, shuffle=True, num_workers=workers, seed=0)
    set_loader_epoch(loader, 0)
    iterator = iter(loader)
    # Worker start-up is not the steady rate, and the batches the workers prefetched meanwhile
    # (2 each) would come at no cost: take those first.
    for _ in range(1 + 2 * workers):
        next(iterator)
    start = time.perf_counter()
    for _ in range(images):
        next(iterator)
    seconds = time.perf_counter() - start
    del iterator, loader
    return images / seconds


def cpu_ms_per_image(cfg: DataConfig, mode: str, images: int) -> float:
    """CPU time one sample costs a worker (read, decode, resize, crop, flip), on one thread as in
    a worker. Unlike the wall rate it hardly depends on what else the machine runs."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        dataset = create_dataset(mode, cfg)
        keys = [SampleKey(i, sample_seed(0, 0, i)) for i in range(min(images, len(dataset)))]
        dataset[keys[0]]                      # opens the shard, warms the allocator
        start = time.process_time()
        for key in keys:
            dataset[key]
        return (time.process_time() - start) / len(keys) * 1000
    finally:
        torch.set_num_threads(threads)


def stage_costs(cfg: DataConfig, path: Path, repeats: int = 20) -> dict[str, float]:
    """CPU ms per pair of each stage of a sample, one thread: decode (to two uint8 halves),
    resize (both halves to load_size), to_float (both crops to [-1, 1] float32)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        dataset = AlignedDataset(cfg)
        halves = dataset._decode(path)
        size = (cfg.load_size, cfg.load_size)
        resized = [resize_bicubic(h, size) for h in halves]
        crops = [r[:, :cfg.crop_size, :cfg.crop_size] for r in resized]
        stages = {"decode": lambda: dataset._decode(path),
                  "resize": lambda: [resize_bicubic(h, size) for h in halves],
                  "to_float": lambda: [to_signed_unit(c) for c in crops]}
        costs = {}
        for name, fn in stages.items():
            fn()
            start = time.process_time()
            for _ in range(repeats):
                fn()
            costs[name] = round((time.process_time() - start) / repeats * 1000, 2)
        return costs
    finally:
        torch.set_num_threads(threads)


def step_rate(dataroot: Path, size: int, steps: int) -> dict:
    args = ["--dataroot", str(dataroot), "--gpu_ids", "-1", "--crop_size", str(size),
            "--load_size", str(size + size // 8), "--display_id", "0"]
    model = build_model(args, VARIANTS["defaults"], Runtime(device=torch.device("cpu")))
    gen = torch.Generator().manual_seed(0)
    batch = {"A": torch.rand((1, 3, size, size), generator=gen) * 2 - 1,
             "B": torch.rand((1, 3, size, size), generator=gen) * 2 - 1}
    times = []
    for i in range(steps + 1):
        start = time.perf_counter()
        model.set_input(batch)
        model.train_step()
        if i:
            times.append(time.perf_counter() - start)
    return {"steps_per_s": round(1 / median(times), 3), "amp": str(model.amp), "netG": model.opt.netG}


def run(bench: argparse.Namespace) -> Iterator[dict]:
    if not (bench.dataroot / "train").is_dir():
        raise SystemExit(f"loader_speed.py: {bench.dataroot}/train not found; get facades with "
                         "bash datasets/download_pix2pix_dataset.sh facades (or pass --dataroot)")
    # --amp auto's answer pinned (bf16 where the CPU computes it natively) instead of probed:
    # the probe times a dozen steps per size, more than this whole benchmark may take.
    os.environ.setdefault(PIN_ENV, "native")
    common = {"machine": machine_name(torch.device("cpu")), "note": BUSY_NOTE}
    workers = int_list(bench.workers)
    with tempfile.TemporaryDirectory(prefix="loader_speed_") as tmp:
        work = Path(tmp)
        roots = prepare(bench.dataroot, work, bench.formats.split(","), bench.images + max(workers) * 2 + 1)
        for size in int_list(bench.sizes):
            for fmt, root in roots.items():
                cfg = DataConfig(root, load_size=size + size // 8, crop_size=size, size_divisor=256)
                yield {"bench": "stages", "size": size, "format": fmt,
                       "cpu_ms_per_pair": stage_costs(cfg, next(iter(sorted((root / "train").iterdir())))),
                       **common, "load_average": load_average()}
                for source in SOURCES:
                    cfg = DataConfig(root if source != "shards" else work / f"{fmt}_shards",
                                     load_size=size + size // 8, crop_size=size, cache=source == "cache",
                                     size_divisor=256, shard_cache=work / "cache")
                    mode = "shards" if source == "shards" else "aligned"
                    base = {"bench": "loader", "size": size, "format": fmt, "source": source}
                    cpu_ms = cpu_ms_per_image(cfg, mode, bench.images)
                    yield {**base, "workers": 0, "cpu_ms_per_image": round(cpu_ms, 2), **common,
                           "load_average": load_average()}
                    for n in workers:
                        rate = loader_rate(cfg, mode, n, bench.images)
                        yield {**base, "workers": n, "images_per_s": round(rate, 1), **common,
                               "load_average": load_average()}
            step = step_rate(roots[next(iter(roots))], size, bench.steps)
            yield {"bench": "train_step", "size": size, **step, **common, "load_average": load_average()}


def table(records: list[dict]) -> str:
    """The README's table: CPU ms per image, images/s by worker count, and the step rate; then
    the stages of one pair."""
    workers = sorted({r["workers"] for r in records if r["bench"] == "loader" and r["workers"]})
    header = " | ".join(f"{n} worker{'s' * (n > 1)}, images/s" for n in workers)
    lines = [f"| size | format | source | CPU ms/image | {header} | train step |", "|---" * (5 + len(workers)) + "|"]
    steps = {r["size"]: r["steps_per_s"] for r in records if r["bench"] == "train_step"}
    rows: dict[tuple, dict[int, float]] = {}
    for r in records:
        if r["bench"] == "loader":
            value = r["cpu_ms_per_image"] if r["workers"] == 0 else r["images_per_s"]
            rows.setdefault((r["size"], r["format"], r["source"]), {})[r["workers"]] = value
    for (size, fmt, source), cells in rows.items():
        rates = " | ".join(str(cells.get(n, "")) for n in workers)
        lines.append(f"| {size} | {fmt} | {source} | {cells.get(0, '')} | {rates} | {steps.get(size, '')} steps/s |")
    for r in records:
        if r["bench"] == "stages":
            lines.append(f"# {r['size']} px {r['format']}, CPU ms per pair: {r['cpu_ms_per_pair']}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    bench = bench_parser().parse_args(argv)
    records: list[dict] = []

    def kept(stream: Iterator[dict]) -> Iterator[dict]:
        for record in stream:
            records.append(record)
            yield record

    warnings.filterwarnings("ignore", message="This DataLoader will create")   # 4 workers on fewer cores is the point
    emit(kept(run(bench)), bench.out)
    print(table(records))


if __name__ == "__main__":
    main()
