"""Whole train.py processes side by side: this project's variants (amp, OpenMP waiting
policies, threads) against each other and, with ``--reference DIR``, against a checkout of
the reference implementation (pytorch-CycleGAN-and-pix2pix) run with the same flags.

Why whole processes: the OpenMP runtime reads its waiting policy once, when torch loads, and
an in-process benchmark shares one policy between all its variants; that is how the cost of
``OMP_WAIT_POLICY=PASSIVE`` at small sizes went unseen (issue 15).

Timing, two measures on one clock (benchmarks/whole_run.py). The one a user waits for: each
round runs every variant twice back to back, ``--steps`` N and ``--short_steps`` M steps with
the same flags, and takes (wall of N - wall of M) / (N - M), so start-up and end-of-run work
cancel and every second of steps M+1..N counts. Beside it, the step-line measure: the median
gap between the N-step process's step lines after ``--warmup`` steps. The gaps' mean, 90th
percentile, largest and slow steps (by number), the seconds to the first step line and after
the last one (end-of-run work), and the parts that make up wall minus gap come with them; a
table at the end shows them per variant. Both programs' own timers are ignored. Rounds
alternate the variants (order rotated each round), so a load that comes and goes hits all of
them alike; the figure per variant is the median over rounds.

    python benchmarks/vs_reference.py --reference /tmp/refpix --configs small,paper
    python benchmarks/vs_reference.py --variants fp32,fp32_passive --busy 1   # one core kept busy

The reference needs torchvision, which this project's CPU-only environment does not have (no
torchvision wheel imports beside torch's CPU-only one): ``--reference_python`` names an
environment with torch and torchvision for it, and the ``*_refpy`` variants run this project
under that same interpreter, so that the ratio against the reference is taken on one torch.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

# No torch at import: the processes measured load it, this one only waits for them (and a
# bad flag fails in a moment). benchmarks/common.py comes in for emit() at the end.
from benchmarks.dataroot import ROOT, add_dataroot_option, check_dataroot
from benchmarks.reference_shim import torch_version, wandb_shim
from benchmarks.vs_reference_report import add_ratios, measures, progress_line, table
from benchmarks.whole_run import round_measure, time_process
from util.interleave import rotated

# The model flags both programs understand, per configuration.
CONFIGS: dict[str, tuple[str, ...]] = {
    "paper": ("--netG", "unet_256", "--netD", "basic", "--norm", "batch", "--load_size", "286",
              "--crop_size", "256"),
    "small": ("--netG", "unet_128", "--netD", "basic", "--norm", "batch", "--ngf", "32", "--ndf", "32",
              "--load_size", "143", "--crop_size", "128"),
}


@dataclass(frozen=True)
class Variant:
    program: str                                   # "ours" or "reference"
    flags: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    help: str = ""
    interpreter: str = "ours"                      # "ours" (this Python) or "reference" (--reference_python)


# OpenMP settings a variant fixes; the others are removed from its environment, so "default"
# really is libgomp's own default (spin ~300k iterations, then sleep) and not the caller's.
OMP_KEYS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME", "OMP_NUM_THREADS")
# util/omp_env.py applies its policy only when none of OMP_KEYS is set; this opt-out leaves the
# runtime's default in force without fixing any of them.
KEEP_DEFAULT = {"PIX2PIX_OMP_POLICY": "default"}

VARIANTS: dict[str, Variant] = {
    "shipped": Variant("ours", help="train.py as a user runs it (its --amp and waiting-policy defaults)"),
    "fp32": Variant("ours", ("--amp", "none"), help="--amp none, the shipped waiting policy"),
    "bf16": Variant("ours", ("--amp", "bf16"), help="--amp bf16, the shipped waiting policy"),
    "fp32_passive": Variant("ours", ("--amp", "none"), {"OMP_WAIT_POLICY": "PASSIVE"},
                            help="threads sleep at once when idle (the default before issue 15)"),
    "fp32_omp_default": Variant("ours", ("--amp", "none"), KEEP_DEFAULT,
                                help="libgomp's default: spin 300k iterations, then sleep"),
    "fp32_active": Variant("ours", ("--amp", "none"), {"OMP_WAIT_POLICY": "ACTIVE"},
                           help="threads spin while idle, without limit"),
    "fp32_spin3k": Variant("ours", ("--amp", "none"), {"GOMP_SPINCOUNT": "3000"},
                           help="a spin bounded to 3k iterations, then sleep"),
    "fp32_spin30k": Variant("ours", ("--amp", "none"), {"GOMP_SPINCOUNT": "30000"},
                            help="a spin bounded to 30k iterations, then sleep"),
    "fp32_spin3m": Variant("ours", ("--amp", "none"), {"GOMP_SPINCOUNT": "3000000"},
                           help="a spin bounded to 3M iterations, then sleep"),
    "fp32_threads1": Variant("ours", ("--amp", "none", "--torch_threads", "1"), help="one intra-op thread"),
    "fp32_workers0": Variant("ours", ("--amp", "none", "--num_threads", "0"),
                             help="batches loaded in the main process (no loader workers beside the step)"),
    "fp32_workers1": Variant("ours", ("--amp", "none", "--num_threads", "1"), help="one loader worker"),
    "fp32_malloc_default": Variant("ours", ("--amp", "none"), {"PIX2PIX_MALLOC": "default"},
                                   help="glibc's own mmap and trim behaviour (before issue 15)"),
    "fp32_cache": Variant("ours", ("--amp", "none", "--cache_dataset"), help="decoded images kept in memory"),
    "shipped_refpy": Variant("ours", help="shipped, run by --reference_python (the reference's torch)",
                             interpreter="reference"),
    "fp32_refpy": Variant("ours", ("--amp", "none"), help="fp32, run by --reference_python (the reference's torch)",
                          interpreter="reference"),
    "reference": Variant("reference", help="the reference's train.py as a user runs it (OpenMP default)",
                         interpreter="reference"),
}

STEP_LINE = {
    "ours": re.compile(r"^\(epoch \d+, step \d+,"),
    "reference": re.compile(r"^(\[Rank \d+\] )?\(epoch: \d+, iters: \d+,"),
}


def command(variant: Variant, config: str, steps: int, reference: Path | None, workdir: Path,
            dataroot: Path, reference_python: str = sys.executable) -> list[str]:
    common = ["--dataroot", str(dataroot.resolve()), "--name", "bench", "--checkpoints_dir", str(workdir),
              "--model", "pix2pix", "--direction", "BtoA", "--batch_size", "1", "--print_freq", "1",
              "--display_freq", "1000000", "--update_html_freq", "1000000", "--no_html", *CONFIGS[config]]
    if variant.program == "reference":
        assert reference is not None
        # The reference has no step limit: one epoch over the first `steps` images, never saved
        # (it saves at an epoch's end only when the epoch is a multiple of --save_epoch_freq).
        # Ours saves 'latest' where --max_steps stops it, as any run of ours ends: that is in its
        # end_s, and the same in both processes of a pair. Its newer trees pick the device
        # themselves (CUDA_VISIBLE_DEVICES hides any GPU).
        return [reference_python, str(reference / "train.py"), *common,
                "--max_dataset_size", str(steps), "--n_epochs", "1", "--n_epochs_decay", "0",
                "--save_epoch_freq", "1000", "--save_latest_freq", "100000000"]
    python = reference_python if variant.interpreter == "reference" else sys.executable
    return [python, str(ROOT / "train.py"), *common, "--gpu_ids", "-1", "--display_id", "0",
            "--max_steps", str(steps), *variant.flags]


def environment(variant: Variant, reference_shim: Path | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in OMP_KEYS and k not in ("PIX2PIX_OMP_POLICY", "PIX2PIX_MALLOC")}
    env.update(variant.env)
    env["PYTHONUNBUFFERED"] = "1"
    env["CUDA_VISIBLE_DEVICES"] = ""   # both on the CPU
    if variant.program == "reference" and reference_shim is not None:
        env["PYTHONPATH"] = str(reference_shim) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def python_label(python: str) -> str:
    """The interpreter and the torch it imports, e.g. '/tmp/env/bin/python: torch 2.14.1+cu130'."""
    return f"{python}: torch {torch_version(python) or '?'}"


def decided(workdir: Path) -> list[str]:
    """What our train.py decided as it started (precision, how OpenMP threads wait), from its
    train_opt.txt: the two processes of a pair decide apart, and on a machine whose load
    changes they can decide differently. The reference writes no such lines. (Whether the
    ``--amp auto`` probe ran comes from the process's stdout: ``ProcessTiming.notes``.)"""
    path = workdir / "bench" / "train_opt.txt"
    if not path.is_file():
        return []
    return [line.strip() for line in path.read_text().splitlines() if line.strip().split(":")[0] in ("amp", "omp_wait")]


def time_pair(variant: Variant, config: str, args: argparse.Namespace, reference: Path | None, workdir: Path,
              shim: Path | None, long_first: bool) -> dict:
    """One round of one variant: the --steps and the --short_steps process back to back."""
    timings, decisions = {}, []
    for steps in ((args.steps, args.short_steps) if long_first else (args.short_steps, args.steps)):
        folder = workdir / f"steps{steps}"
        cmd = command(variant, config, steps, reference, folder, Path(args.dataroot), args.reference_python)
        cwd = reference if variant.program == "reference" else ROOT
        timing = time_process(cmd, environment(variant, shim), STEP_LINE[variant.program], cwd)
        if len(timing.stamps) != steps:
            raise RuntimeError(f"{' '.join(cmd[:2])}: {len(timing.stamps)} step lines where {steps} were asked for "
                               f"(does --dataroot hold {steps} training images?)")
        timings[steps] = timing
        decisions += [f"{steps} steps: {d}" for d in decided(folder)]
        decisions += [f"{steps} steps, at {t} s: {note}" for t, note in timing.notes]
        shutil.rmtree(folder, ignore_errors=True)
    return {**round_measure(timings[args.steps], timings[args.short_steps], args.warmup), "decided": decisions}


class BusyLoad:
    """``n`` processes that spin on a core each: "the other core is busy"."""

    def __init__(self, n: int) -> None:
        self.procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]

    def close(self) -> None:
        for proc in self.procs:
            proc.kill()
            proc.wait()


def run(args: argparse.Namespace) -> list[dict]:
    from benchmarks.common import emit

    names = args.variants.split(",")
    reference = Path(args.reference).resolve() if args.reference else None
    if reference is None:
        names = [n for n in names if VARIANTS[n].program != "reference"]
    baseline = "reference" if reference is not None else "fp32"
    if baseline not in names:
        names.insert(0, baseline)
    records = []
    with tempfile.TemporaryDirectory(prefix="vs_reference_") as tmp_name:
        tmp = Path(tmp_name)
        shim = wandb_shim(tmp / "shim") if reference is not None else None
        for config in args.configs.split(","):
            rounds: dict[str, list[dict]] = {n: [] for n in names}
            loads = []
            load = BusyLoad(args.busy)
            try:
                for r in range(args.rounds):
                    for name in rotated(names, r):
                        # The pair's order alternates too: neither process always runs second.
                        rounds[name].append(time_pair(VARIANTS[name], config, args, reference,
                                                      tmp / f"{config}_{name}_{r}", shim, long_first=r % 2 == 0))
                        loads.append(os.getloadavg()[0])
                        print(progress_line(config, name, r, args.rounds, rounds[name][-1], loads[-1]),
                              file=sys.stderr, flush=True)
            finally:
                load.close()
            config_records = [{"bench": "vs_reference", "config": config, "variant": name,
                               "help": VARIANTS[name].help, **measures(rounds[name]),
                               "steps": args.steps, "short_steps": args.short_steps, "warmup": args.warmup,
                               "busy_processes": args.busy, "load_during": [round(min(loads), 2), round(max(loads), 2)],
                               "flags": list(CONFIGS[config] + VARIANTS[name].flags), "env": VARIANTS[name].env,
                               "python": python_label(args.reference_python if VARIANTS[name].interpreter
                                                      == "reference" else sys.executable)} for name in names]
            add_ratios(config_records, baseline)
            emit(config_records, args.out)
            print(table(config_records, baseline), file=sys.stderr, flush=True)
            records += config_records
    return records


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--reference", help="a checkout of pytorch-CycleGAN-and-pix2pix (its train.py is run)")
    p.add_argument("--configs", default="small,paper", help=f"comma-separated: {', '.join(CONFIGS)}")
    p.add_argument("--variants", default="reference,shipped,fp32",
                   help="comma-separated:\n" + "\n".join(f"  {n}: {v.help}" for n, v in VARIANTS.items()))
    p.add_argument("--steps", type=int, default=22, help="steps of the long process of each pair (N)")
    p.add_argument("--short_steps", type=int, default=2,
                   help="steps of the short process (M); per step: (wall of N - wall of M) / (N - M)")
    p.add_argument("--warmup", type=int, default=5, help="first steps left out of the step-line gaps (at least 1)")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds; the median is reported")
    p.add_argument("--busy", type=int, default=0, help="spinning processes started alongside (a loaded machine)")
    p.add_argument("--reference_python", default=sys.executable,
                   help="the interpreter of the reference and of the *_refpy variants (default: this one)")
    add_dataroot_option(p)
    p.add_argument("--out", help="append the JSON lines to this file")
    args = p.parse_args(argv)
    unknown = [n for n in args.variants.split(",") if n not in VARIANTS]
    if unknown:
        p.error(f"--variants: unknown {', '.join(unknown)} (known: {', '.join(VARIANTS)})")
    if not shutil.which(args.reference_python):
        p.exit(1, f"vs_reference.py: error: --reference_python {args.reference_python}: no such interpreter\n")
    if args.reference and not (Path(args.reference) / "train.py").is_file():
        p.exit(1, f"vs_reference.py: error: --reference {Path(args.reference).resolve()}: no train.py there\n")
    bad = [c for c in args.configs.split(",") if c not in CONFIGS]
    if bad:
        p.error(f"--configs: unknown {', '.join(bad)} (known: {', '.join(CONFIGS)})")
    if args.warmup < 1:
        p.error(f"--warmup {args.warmup}: at least 1 (the first step's time cannot be told from start-up)")
    if args.steps <= args.warmup + 1:
        p.error(f"--steps {args.steps} must exceed --warmup {args.warmup} + 1")
    if not 1 <= args.short_steps < args.steps:
        p.error(f"--short_steps {args.short_steps} must be at least 1 and below --steps {args.steps}")
    check_dataroot("vs_reference.py", args.dataroot)
    return args


if __name__ == "__main__":
    run(parse())
