"""Fault campaign (issue 12): break short CPU training runs on purpose, rerun the same command,
and check that nothing is lost.

    python benchmarks/fault_campaign.py --trials 20        # a few minutes on 2 cores
    python benchmarks/fault_campaign.py --trials 4 --faults kill,corrupt

Every run trains tiny networks on 32 px pairs (8 images, batch 2, 3 epochs: 12 steps) with
``--continue_train auto`` and 'latest' saved after every step, in a child process with one
thread. The oracle is the same command run once without faults; "bit-exact" means the final
checkpoint equals the oracle's tensor for tensor (weights, optimizer states, counters).

Faults (one JSON line each, plus a summary table):
  kill      SIGKILL at a random moment of a random step; every 4th trial deterministically
            inside a checkpoint write (the PIX2PIX_TEST_PAUSE_IN_SAVE hook holds each write open for 1 s).
            After each kill every checkpoint file must load; the rerun must leave no temporary file.
  signal    SIGTERM / SIGINT / SIGUSR1 at a random step: exit 143 / 130 / 138 with 'latest' saved.
  enospc    a full disk during a save: a real tmpfs too small for the second save (mounted when
            this runs as root), else an OSError injected at the write: one line, the previous
            checkpoint intact, no partial file.
  corrupt   'latest' truncated or its zip directory overwritten: --continue_train fails with one
            line naming the file and the newest loadable checkpoint; auto falls back to it.
  nan       a NaN loss at a random step: the run stops with one line, the last checkpoint finite.
  visdom    the visdom server killed after a random step, started again 3 steps later: one
            warning, training goes on (and ends bit-exact), the restarted server gets points.
  torchrun_kill
            one of 2 gloo ranks SIGKILLed under torchrun --max_restarts=1 (ranks 0 and 1 in
            turn, at a random moment of a random step): torchrun restarts both and the run ends
            equal to an uninterrupted 2-process run (benchmarks/fault_ddp.py).

The trials live beside this runner: fault_trials.py (one process), fault_visdom.py,
fault_ddp.py (two processes); what they share is in fault_runs.py.
"""
from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

from benchmarks.common import ROOT, emit, load_average
from benchmarks.fault_ddp import torchrun_kill_trial
from benchmarks.fault_runs import command, run, training_of, write_pairs
from benchmarks.fault_trials import corrupt_trial, enospc_trial, kill_trial, nan_trial, signal_trial
from benchmarks.fault_visdom import visdom_trial


FAULTS: dict[str, Callable[..., dict]] = {"kill": kill_trial, "signal": signal_trial, "enospc": enospc_trial,
                                          "corrupt": corrupt_trial, "nan": nan_trial,
                                          "visdom": visdom_trial, "torchrun_kill": torchrun_kill_trial}


# Trials per fault for --trials N: the kills get N, the deterministic faults a few each.
def trials_for(fault: str, n: int) -> int:
    return n if fault in ("kill", "torchrun_kill") else max(1, min(n, {"signal": 6, "corrupt": 4}.get(fault, 2)))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=20, help="SIGKILL trials, one and two processes (the other faults get a few each)")
    p.add_argument("--faults", default=",".join(FAULTS), help=f"comma-separated, from: {', '.join(FAULTS)}")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "fault_campaign.jsonl"))
    args = p.parse_args(argv)
    rng = random.Random(args.seed)
    summary: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="faults_") as tmp:
        work = Path(tmp)
        pairs = write_pairs(work / "pairs")
        done = run(command(pairs, work, "oracle"))
        if done.returncode != 0:
            raise SystemExit(f"fault_campaign.py: the uninterrupted run failed:\n{done.stderr[-2000:]}")
        oracle = training_of(work / "oracle" / "latest.pt")
        for fault in args.faults.split(","):
            for i in range(trials_for(fault, args.trials)):
                started = time.monotonic()
                result = FAULTS[fault](i, rng, pairs, work, oracle)
                result["seconds"] = round(time.monotonic() - started, 1)
                emit([result], args.out)
                summary.setdefault(fault, []).append(result)
    rows = [{"fault": fault, "trials": len(results), "runs_lost": sum(r["lost"] for r in results),
             "resumed_bit_exact": (f"{sum(bool(r['bit_exact']) for r in results)}/{len(results)}"
                                   if any(r["bit_exact"] is not None for r in results) else "n/a")}
            for fault, results in summary.items()]
    emit([{"bench": "fault_campaign", "table": rows, "cpu": "see README", "load_average": load_average()}], args.out)
    print("\n| fault | trials | runs lost | resumed bit-exact |\n|---|---|---|---|")
    for row in rows:
        print(f"| {row['fault']} | {row['trials']} | {row['runs_lost']} | {row['resumed_bit_exact']} |")
    return 1 if any(row["runs_lost"] for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
