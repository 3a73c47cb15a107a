"""Soak: does resident memory stay flat over a long run? (issue 12)

    python benchmarks/soak.py                      # 2,000 demo steps, without and with --cache_dataset
    python benchmarks/soak.py --steps 400 --early 100
    python benchmarks/soak.py -- --ngf 8 --ndf 8   # after --: train.py options (the later one wins)

Each variant runs ``train.py`` in a child process on the demo pairs with the demo's settings
(unet_128, ngf/ndf 32, 128 px, one loader worker; batch 4 unless ``--batch_size``). Every logged step (every 100 steps) this
script reads the resident set size of the trainer and of its loader workers from /proc, and at
the end prints one JSON line per variant: RSS after step ``--early`` and after step ``--steps``,
and their relative difference (goal: under 5%). Memory only, no timing assertion; the run goes
on 100 steps past ``--steps`` so that the last reading is taken while training, not while the
process is saving or exiting.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common import ROOT, emit, load_average, split_argv

DEMO = ROOT / "datasets" / "demo"
STEP_LINE = re.compile(r"\(epoch \d+, step (\d+),")
# The demo's settings (options/defaults.py: DEMO_DEFAULTS), spelled out because the demo
# itself always caches its images; with an explicit --dataroot caching is a choice.
DEMO_FLAGS = ["--netG", "unet_128", "--ngf", "32", "--ndf", "32", "--load_size", "128", "--crop_size", "128",
              "--preprocess", "none", "--batch_size", "4", "--num_threads", "1", "--display_id", "0",
              "--gpu_ids", "-1", "--print_freq", "400", "--display_freq", "4000", "--update_html_freq", "4000",
              "--save_latest_freq", "4000", "--n_epochs", "100", "--n_epochs_decay", "0"]


def rss_kib(pid: int) -> int:
    """Resident set of one process, in KiB (0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def descendants(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
        for child in children:
            found += [child, *descendants(child)]
    return found


def soak(cache: bool, steps: int, early: int, batch: int, workdir: Path, extra: list[str]) -> dict:
    name = "soak_cache" if cache else "soak_nocache"
    command = [sys.executable, str(ROOT / "train.py"), "--dataroot", str(DEMO), "--name", name,
               "--checkpoints_dir", str(workdir), "--no_html", "--max_steps", str(steps + 100), *DEMO_FLAGS,
               # a log line (and so a reading) every 100 steps; pages and checkpoints rarely
               "--batch_size", str(batch), "--print_freq", str(100 * batch), "--display_freq", str(10**6),
               "--update_html_freq", str(10**6), "--save_latest_freq", str(10**6), *extra]
    if cache:
        command.append("--cache_dataset")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    readings: dict[int, tuple[int, int]] = {}  # step -> (trainer KiB, trainer + workers KiB)
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                          cwd=workdir) as proc:
        assert proc.stdout is not None
        tail: list[str] = []
        for line in proc.stdout:
            tail = (tail + [line])[-20:]
            match = STEP_LINE.search(line)
            if match:
                main = rss_kib(proc.pid)
                readings[int(match.group(1))] = (main, main + sum(rss_kib(p) for p in descendants(proc.pid)))
        if proc.wait() != 0:
            raise SystemExit(f"soak.py: train.py failed ({name}):\n{''.join(tail)}")
    if early not in readings or steps not in readings:
        raise SystemExit(f"soak.py: no reading at step {early} or {steps} (steps logged: {sorted(readings)})")
    (main_early, all_early), (main_late, all_late) = readings[early], readings[steps]
    return {"bench": "soak", "cache_dataset": cache, "steps": steps, "early_step": early, "batch_size": batch,
            "train_flags": extra,
            "rss_mib_early": round(main_early / 1024, 1), "rss_mib_late": round(main_late / 1024, 1),
            "rss_change": round((main_late - main_early) / main_early, 4),
            "rss_with_workers_mib_early": round(all_early / 1024, 1),
            "rss_with_workers_mib_late": round(all_late / 1024, 1),
            "rss_with_workers_change": round((all_late - all_early) / all_early, 4),
            "rss_mib_by_step": {s: round(m / 1024, 1) for s, (m, _) in sorted(readings.items())},
            "load_average": load_average()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=2000, help="last step measured (a multiple of 100)")
    p.add_argument("--early", type=int, default=200, help="first step measured (a multiple of 100)")
    p.add_argument("--batch_size", type=int, default=4, help="per step (the demo's is 4)")
    p.add_argument("--variants", default="nocache,cache", help="nocache, cache or both")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "soak_cpu.jsonl"))
    ours, extra = split_argv(argv)
    args = p.parse_args(ours)
    from datasets.make_demo import ensure_demo_dataset
    ensure_demo_dataset(DEMO)
    with tempfile.TemporaryDirectory(prefix="soak_") as tmp:
        for variant in args.variants.split(","):
            result = soak(variant == "cache", args.steps, args.early, args.batch_size, Path(tmp), extra)
            emit([result], args.out)
            if abs(result["rss_change"]) >= 0.05:
                print(f"soak.py: resident memory moved {result['rss_change']:+.1%} between steps "
                      f"{args.early} and {args.steps} ({variant})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
