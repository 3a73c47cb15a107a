"""Translation quality of the quality options, 3 seeds each, on a budget that fits 2 CPU cores.

    python benchmarks/quality.py                          # run what is missing, then print the table
    python benchmarks/quality.py --table                  # only the table, from the results file
    python benchmarks/quality.py --datasets facades --configs baseline,fp32 --seeds 1,2,3

Each run is the real command line: train.py, then test.py (the paper's test mode: batch
statistics and dropout on, as in the published FID figures), then a score of the fake_B set
against the real_B set (FID, KID, checkerboard share). Every finished run and every score is
one JSON line in ``--out``; a second invocation skips what is there, so the benchmark resumes
after an interruption and a time limit (``--stop_at``) only postpones runs.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

from benchmarks.common import ROOT, emit, machine_name
from benchmarks.dataroot import add_dataroot_option, check_dataroot
from benchmarks.quality_verdict import verdict
from benchmarks.quality_programs import Programs, pixel_scores, test, train
from benchmarks.reference_shim import torch_version, wandb_shim

import torch

# Two budgets. "short" fits the 2 shared cores in minutes: 200 of the facades pairs for one
# epoch, the 100 edges2shoes pairs for two. "10ep": ten epochs over every training pair (5 at
# the initial rate, 5 decaying), the budget the recipe is judged at against the reference.
BUDGETS: dict[str, dict[str, list[str]]] = {
    "short": {"facades": ["--max_dataset_size", "200", "--n_epochs", "1", "--n_epochs_decay", "0"],
              "edges2shoes": ["--n_epochs", "2", "--n_epochs_decay", "0"]},
    "10ep": {"facades": ["--n_epochs", "5", "--n_epochs_decay", "5"],
             "edges2shoes": ["--n_epochs", "5", "--n_epochs_decay", "5"]},
}
DATASETS = {
    # labels -> photo; scored on the 106 test pairs.
    "facades": {"train": ["--direction", "BtoA", "--load_size", "143"], "test": ["--direction", "BtoA", "--phase", "test"]},
    # sketch -> photo; the 100 training pairs of the sample; scored on its 20 val pairs.
    "edges2shoes": {"train": ["--direction", "AtoB", "--load_size", "143"], "test": ["--direction", "AtoB", "--phase", "val"]},
}
# How test.py runs G: the paper's test mode (batch statistics, dropout on) or --eval.
TEST_MODES = {"paper": [], "eval": ["--eval"]}
MULTISCALE = ["--netD", "multiscale", "--num_D", "2", "--lambda_feat", "10"]
# "reference" is the reference's own train.py and test.py with the same flags (--reference).
REFERENCE = "reference"
CONFIGS = {
    REFERENCE: [],
    # The defaults: --amp auto, which measures and here (EPYC Zen 4, 128 px) picks fp32, so the
    # other precision is asked for by name as well.
    "baseline": [],
    "fp32": ["--amp", "none"],
    "bf16": ["--amp", "bf16"],
    "bilinear": ["--upsample", "bilinear"],
    "nearest": ["--upsample", "nearest"],
    "ema": ["--ema_decay", "0.999"],
    "nearest_ema": ["--upsample", "nearest", "--ema_decay", "0.999"],
    "multiscale_fm": MULTISCALE,
    "combined": ["--upsample", "bilinear", "--ema_decay", "0.999", *MULTISCALE],
}
DEFAULT_PLAN = "facades:" + ",".join(c for c in CONFIGS if c != REFERENCE) + ";edges2shoes:baseline,bilinear,combined"


def run_id(dataset: str, config: str, seed: int) -> str:
    return f"{dataset}_{config}_s{seed}"


def load_records(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def train_and_test(dataset: str, root: Path, config: str, seed: int, work: Path, budget: str,
                   test_mode: str, programs: Programs, reuse: bool = False) -> dict:
    """Train (unless ``reuse`` and the run's checkpoint is there: another test mode of the
    same training), test and score the pixels of one run."""
    spec, name = DATASETS[dataset], run_id(dataset, config, seed)
    reference = config == REFERENCE
    where = ["--dataroot", str(root.resolve()), "--name", name, "--checkpoints_dir", str(work / "checkpoints")]
    flags = BUDGETS[budget][dataset]
    epochs = sum(int(flags[i + 1]) for i, f in enumerate(flags) if f in ("--n_epochs", "--n_epochs_decay"))
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    # Ours writes latest_net_G.pt, the reference latest_net_G.pth.
    trained = [work / "checkpoints" / name / f"latest_net_G.{ext}" for ext in ("pt", "pth")]
    train_s = None
    if not (reuse and any(path.is_file() for path in trained)):
        start = time.perf_counter()
        train(programs, reference, where, seed, [*spec["train"], *flags], CONFIGS[config], epochs,
              logs / f"{name}_train.log")
        train_s = round(time.perf_counter() - start, 1)
    start = time.perf_counter()
    # One results folder per test mode: a second mode must not overwrite the first one's images.
    images = test(programs, reference, where, spec["test"], TEST_MODES[test_mode], work / f"results_{test_mode}",
                  logs / f"{name}_test_{test_mode}.log")
    test_s = time.perf_counter() - start
    python = programs.reference_python if reference else sys.executable
    return {"bench": "quality", "kind": "run", "dataset": dataset, "config": config, "seed": seed,
            "program": REFERENCE if reference else "ours", "budget": budget, "test_mode": test_mode,
            "flags": CONFIGS[config], "schedule": flags, **pixel_scores(images),
            "train_s": train_s, "test_s": round(test_s, 1), "page": str(images.parent),
            "torch": torch_version(python), "threads": programs.threads,
            "cpu": machine_name(torch.device("cpu"))}


def score(run: dict, work: Path) -> dict:
    # Imported here: a results file can be turned into a table without the extractor.
    import numpy as np

    from reporting.checkerboard import checkerboard_ratio_of_folders
    from reporting.fid import features_of_files, score_features

    images = Path(run["page"]) / "images"
    fake, real = sorted(images.glob("*_fake_B.png")), sorted(images.glob("*_real_B.png"))
    start = time.perf_counter()
    # Every run of a data set writes the same real_B files: their features are taken once.
    cache = work / f"real_features_{run['dataset']}_{run.get('program', 'ours')}_{len(real)}.npy"
    if not cache.is_file():
        np.save(cache, features_of_files(real))
    fid = score_features(np.load(cache), features_of_files(fake))
    return {"bench": "quality", "kind": "score", "dataset": run["dataset"], "config": run["config"],
            "seed": run["seed"], "FID": fid.fid, "KID": fid.kid_mean, "KID_std": fid.kid_std,
            "KID_subsets": fid.kid_subsets, "KID_subset_size": fid.kid_subset_size, "images": len(fake),
            "checkerboard": checkerboard_ratio_of_folders(fake, real),
            "score_s": round(time.perf_counter() - start, 1)}


def parse_plan(text: str) -> list[tuple[str, list[str]]]:
    plan = []
    for part in text.split(";"):
        dataset, _, configs = part.partition(":")
        names = configs.split(",") if configs else list(CONFIGS)
        unknown = [n for n in names if n not in CONFIGS] + ([dataset] if dataset not in DATASETS else [])
        if unknown:
            raise SystemExit(f"quality.py: --plan: unknown name(s) {', '.join(unknown)} "
                             f"(datasets: {', '.join(DATASETS)}; configs: {', '.join(CONFIGS)})")
        plan.append((dataset, names))
    return plan


def mean_std(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.4g}"
    return f"{statistics.mean(values):.4g} +- {statistics.stdev(values):.2g}"


def table(records: list[dict]) -> str:
    runs = {(r["dataset"], r["config"], r["seed"]): r for r in records if r.get("kind") == "run"}
    scores = {(r["dataset"], r["config"], r["seed"]): r for r in records if r.get("kind") == "score"}
    lines = ["| data | config | seeds | L1 (/255) | PSNR (dB) | SSIM | FID | KID x1000 | checkerboard | "
             "train s/run | against the reference |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    order = list(dict.fromkeys((d, c) for d, c, _ in runs))

    def rows(dataset: str, config: str) -> tuple[list[dict], list[dict]]:
        return ([r for k, r in runs.items() if k[:2] == (dataset, config)],
                [s for k, s in scores.items() if k[:2] == (dataset, config)])

    def values(rs: list[dict], ss: list[dict]) -> dict[str, list[float]]:
        return {"FID": [s["FID"] for s in ss], "PSNR": [r["PSNR"] for r in rs], "SSIM": [r["SSIM"] for r in rs]}

    for dataset, config in order:
        rs, ss = rows(dataset, config)
        col = lambda rows, key, scale=1.0: mean_std([row[key] * scale for row in rows if row[key] is not None])  # noqa: E731
        # Scores lag the runs (Inception is the slow part): say over how many seeds they are.
        of = "" if len(ss) == len(rs) else f" ({len(ss)} seed{'s' * (len(ss) != 1)})"
        ref = values(*rows(dataset, REFERENCE))
        against = "" if config == REFERENCE or not ref["FID"] or not ss else verdict(values(rs, ss), ref).summary()
        lines.append(f"| {dataset} | {config} | {len(rs)} | {col(rs, 'L1_255')} | {col(rs, 'PSNR')} | "
                     f"{col(rs, 'SSIM')} | {col(ss, 'FID')}{of} | {col(ss, 'KID', 1000)}{of} | "
                     f"{col(ss, 'checkerboard')}{of} | {col(rs, 'train_s')} | {against} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--plan", default=DEFAULT_PLAN,
                   help="dataset:config,config;dataset:... in the order to run (each config: all seeds)")
    p.add_argument("--seeds", default="1,2,3")
    p.add_argument("--budget", choices=list(BUDGETS), default="short", help="training length (see BUDGETS)")
    p.add_argument("--test_mode", choices=list(TEST_MODES), default="paper",
                   help="paper: batch statistics and dropout at test, as the paper; eval: test.py --eval")
    p.add_argument("--reference", type=Path, help="a checkout of pytorch-CycleGAN-and-pix2pix: the "
                   f"'{REFERENCE}' config runs its train.py and test.py")
    p.add_argument("--reference_python", default=sys.executable,
                   help="the interpreter of the reference (it needs torchvision)")
    p.add_argument("--reuse_training", action="store_true",
                   help="test a run whose checkpoint is in --work_dir without training it again (another --test_mode)")
    p.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of every run (two lanes: 1 each)")
    p.add_argument("--out", help="results file (default: benchmarks/results/quality_<budget>_cpu.jsonl)")
    p.add_argument("--also", action="append", default=[],
                   help="another results file (a second lane run with its own --out) for --table")
    p.add_argument("--work_dir", default="/tmp/pix2pix_quality", help="checkpoints and result pages")
    p.add_argument("--stop_at", default="", help="UTC time HH:MM after which no new run starts")
    p.add_argument("--table", action="store_true", help="only print the table of the results file")
    add_dataroot_option(p)
    # A sample of edges2shoes: 100 training pairs in train/ and 20 in val/.
    add_dataroot_option(p, ROOT / "datasets" / "edges2shoes_sample", "edges2shoes", "--edges2shoes_dataroot")
    args = p.parse_args(argv)
    roots = {"facades": args.dataroot, "edges2shoes": args.edges2shoes_dataroot}
    out = Path(args.out or ROOT / "benchmarks" / "results" /
               ("quality_cpu.jsonl" if args.budget == "short" else f"quality_{args.budget}_{args.test_mode}_cpu.jsonl"))
    if args.table:
        print(table([r for path in (out, *map(Path, args.also)) for r in load_records(path)]))
        return 0
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(args.work_dir)
    seeds = [int(s) for s in args.seeds.split(",")]

    def past_stop() -> bool:
        if not args.stop_at:
            return False
        now = datetime.now(timezone.utc).strftime("%H:%M")
        return now >= args.stop_at

    def score_backlog() -> None:
        records = load_records(out)
        scored = {(r["dataset"], r["config"], r["seed"]) for r in records if r.get("kind") == "score"}
        for run in (r for r in records if r.get("kind") == "run"):
            if (run["dataset"], run["config"], run["seed"]) in scored:
                continue
            try:
                emit([score(run, work)], str(out))
            except Exception as err:  # noqa: BLE001  a later invocation scores it
                print(f"quality.py: scoring {run_id(run['dataset'], run['config'], run['seed'])} postponed: "
                      f"{type(err).__name__}: {err}", file=sys.stderr)
                return

    plan = parse_plan(args.plan)
    if any(REFERENCE in configs for _, configs in plan) and not (args.reference and (args.reference / "train.py").is_file()):
        raise SystemExit(f"quality.py: --reference: the plan has '{REFERENCE}' runs but "
                         f"{args.reference or 'no --reference'} holds no train.py of the reference")
    programs = Programs(args.reference.resolve() if args.reference else None, args.reference_python, args.threads,
                        wandb_shim(work / "shim"))
    for dataset, _ in plan:
        check_dataroot("quality.py", roots[dataset], dataset, "--dataroot" if dataset == "facades" else "--edges2shoes_dataroot")
    for dataset, configs in plan:
        for config in configs:
            for seed in seeds:
                done = {(r["dataset"], r["config"], r["seed"]) for r in load_records(out) if r.get("kind") == "run"}
                if (dataset, config, seed) in done:
                    continue
                if past_stop():
                    emit([{"bench": "quality", "kind": "skipped", "dataset": dataset, "config": config,
                           "seed": seed, "why": f"--stop_at {args.stop_at}"}], None)
                    continue
                emit([train_and_test(dataset, roots[dataset], config, seed, work, args.budget, args.test_mode,
                                     programs, args.reuse_training)], str(out))
                score_backlog()
    score_backlog()
    print(table(load_records(out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
