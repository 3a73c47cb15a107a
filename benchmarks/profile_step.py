"""Where a training step's time goes: train.py's own loop under torch.profiler (issue 15).

    python benchmarks/profile_step.py --config small                 # 128 px, libgomp default
    python benchmarks/profile_step.py --config paper --omp passive
    python benchmarks/profile_step.py --config small --native_bn     # torch's BatchNorm for comparison

train.train() runs unchanged for ``--steps`` steps; the phases are marked by wrapping the
model's methods and the loader in ``record_function`` (the code measured is the code users
run, not a copy of the loop). Per step: data (waiting for the loader), set_input, G forward,
D forward + backward, D optimizer, G backward (with D's forward on the fake pair), G
optimizer, and "bookkeeping" = the rest of the step (loss sums, logging, progress, stop
checks, save checks). One JSON line: the phases' median milliseconds per step, the share of
each, batch norm forward/backward time (ours or native), and the top operators by self time.
The OpenMP waiting policy is fixed before torch loads (``--omp``), so it is the one measured.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

ROOT = Path(__file__).resolve().parent.parent
OMP_CHOICES = {"default": {"PIX2PIX_OMP_POLICY": "default"}, "passive": {"OMP_WAIT_POLICY": "PASSIVE"},
               "spin3k": {"GOMP_SPINCOUNT": "3000"}, "shipped": {}}
PHASES = ("data", "set_input", "G_forward", "D_forward_backward", "D_optimizer", "G_backward", "G_optimizer")


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    from benchmarks.dataroot import add_dataroot_option, check_dataroot
    from benchmarks.vs_reference import CONFIGS

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="small", choices=sorted(CONFIGS))
    p.add_argument("--omp", default="default", choices=sorted(OMP_CHOICES),
                   help="OpenMP waiting: libgomp's default, PASSIVE, a 3k spin, or the shipped rule")
    p.add_argument("--steps", type=int, default=40, help="profiled steps (after --warmup)")
    p.add_argument("--warmup", type=int, default=8)
    p.add_argument("--native_bn", action="store_true", help="torch's nn.BatchNorm2d in place of ours")
    p.add_argument("--top", type=int, default=15, help="operators listed by self CPU time")
    p.add_argument("--shapes", action="store_true",
                   help="also list the top operators split by their input shapes (which layer costs what)")
    p.add_argument("--no_profiler", action="store_true",
                   help="phase clocks only: the split without the profiler's per-operator overhead")
    add_dataroot_option(p)
    p.add_argument("--out", help="append the JSON line to this file")
    args, extra = p.parse_known_args(argv)
    args.train_flags = [*CONFIGS[args.config], *extra]
    check_dataroot("profile_step.py", args.dataroot)
    return args


class StepClock:
    """Per-step wall time of each phase, read from ``now`` (perf_counter; a fake clock in the
    tests) around the wrapped calls (the profiler's own tables give the operator view; these
    give the phase split)."""

    def __init__(self, now: Callable[[], float] = time.perf_counter) -> None:
        self.now = now
        self.steps: list[dict[str, float]] = []
        self.step_start: float | None = None

    def new_step(self) -> None:
        now = self.now()
        if self.step_start is not None:
            self.steps[-1]["total"] = now - self.step_start
        self.step_start = now
        self.steps.append({})

    def add(self, phase: str, seconds: float) -> None:
        if self.steps:
            self.steps[-1][phase] = self.steps[-1].get(phase, 0.0) + seconds


def labelled(label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` under a profiler label (its operators grouped in the profile)."""
    import torch

    def wrapper(*a: Any, **k: Any) -> Any:
        with torch.profiler.record_function(label):
            return fn(*a, **k)
    return wrapper


def timed(clock: StepClock, phase: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` labelled as ``phase`` and its wall time added to the step's phase clock."""
    inner = labelled(phase, fn)

    def wrapper(*a: Any, **k: Any) -> Any:
        start = clock.now()
        result = inner(*a, **k)
        clock.add(phase, clock.now() - start)
        return result
    return wrapper


class ProfiledLoader:
    """The training loader, with each ``next`` timed as "data" and marking a step boundary."""

    def __init__(self, loader: Any, clock: StepClock, on_step: Callable[[], None]) -> None:
        self.loader, self.clock, self.on_step = loader, clock, on_step

    def __len__(self) -> int:
        return len(self.loader)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loader, name)

    def __iter__(self) -> Iterator[Any]:
        it = iter(self.loader)
        while True:
            self.on_step()
            self.clock.new_step()
            start = self.clock.now()
            try:
                batch = next(it)
            except StopIteration:
                return
            self.clock.add("data", self.clock.now() - start)
            yield batch


def instrument(clock: StepClock, on_step: Callable[[], None], native_bn: bool) -> contextlib.ExitStack:
    """Wrap the model's phases, the loader and batch norm; undone when the stack closes."""
    import train
    from models import batchnorm, norms
    from models.pix2pix_model import Pix2PixModel

    stack = contextlib.ExitStack()

    def patch(owner: Any, name: str, value: Any) -> None:
        old = getattr(owner, name)
        setattr(owner, name, value)
        stack.callback(setattr, owner, name, old)

    patch(Pix2PixModel, "set_input", timed(clock, "set_input", Pix2PixModel.set_input))
    patch(Pix2PixModel, "forward", timed(clock, "G_forward", Pix2PixModel.forward))
    patch(Pix2PixModel, "backward_D", timed(clock, "D_forward_backward", Pix2PixModel.backward_D))
    patch(Pix2PixModel, "backward_G", timed(clock, "G_backward", Pix2PixModel.backward_G))
    step_optimizer = Pix2PixModel.step_optimizer
    patch(Pix2PixModel, "step_optimizer",
          lambda self, name: timed(clock, f"{name}_optimizer", step_optimizer)(self, name))
    load_data = train.load_data
    patch(train, "load_data", lambda opt, runtime: (lambda d, l: (d, ProfiledLoader(l, clock, on_step)))(
        *load_data(opt, runtime)))
    if native_bn:
        import torch
        patch(norms, "BatchNorm2d", lambda n: torch.nn.BatchNorm2d(n))   # what NORMS["batch"] builds
    else:   # our module's forward is several operators: one label groups them
        patch(batchnorm.BatchNorm2d, "forward", labelled("BatchNorm2d.forward", batchnorm.BatchNorm2d.forward))
    return stack


def bn_share(events: Any) -> dict[str, float]:
    """Self CPU time (ms, all profiled steps) of batch norm: our Function's forward ops are
    grouped under the module's record_function label, its backward is one autograd node."""
    out = {"forward_ms": 0.0, "backward_ms": 0.0}
    for e in events:
        key = e.key
        if key in ("aten::batch_norm", "BatchNorm2d.forward"):
            out["forward_ms"] += e.cpu_time_total / 1e3
        elif "BatchNorm" in key and "Backward" in key:
            out["backward_ms"] += e.cpu_time_total / 1e3
    return {k: round(v, 1) for k, v in out.items()}


def top_by_shape(prof: Any, top: int, per_step: int) -> list[list[Any]]:
    """[operator, input shapes, ms per step, calls per step] for the ``top`` costliest (operator,
    shapes) pairs."""
    events = sorted(prof.key_averages(group_by_input_shape=True),
                    key=lambda e: e.self_cpu_time_total, reverse=True)
    return [[e.key, str(e.input_shapes), round(e.self_cpu_time_total / 1e3 / per_step, 2), round(e.count / per_step, 2)]
            for e in events if not e.key.startswith("ProfilerStep")][:top]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    from util.omp_env import USER_KEYS, set_omp_wait_policy
    for key in (*USER_KEYS, "PIX2PIX_OMP_POLICY"):
        os.environ.pop(key, None)
    os.environ.update(OMP_CHOICES[args.omp])
    os.environ.setdefault("PIX2PIX_AMP_AUTO", "none")   # the probe would add steps to the profile
    set_omp_wait_policy()   # what the drivers do before torch loads
    import torch
    import train
    from benchmarks.common import emit

    clock = StepClock()
    total = args.warmup + args.steps
    schedule = torch.profiler.schedule(wait=0, warmup=args.warmup, active=args.steps, repeat=1)
    profiler = contextlib.nullcontext() if args.no_profiler else \
        torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], schedule=schedule,
                               record_shapes=args.shapes)
    with tempfile.TemporaryDirectory(prefix="profile_step_") as tmp, profiler as prof:
        steps_seen = [0]

        def on_step() -> None:
            if steps_seen[0] and prof is not None:
                prof.step()
            steps_seen[0] += 1

        with instrument(clock, on_step, args.native_bn):
            flags = ["--dataroot", str(args.dataroot), "--name", "profile", "--checkpoints_dir", tmp,
                     "--model", "pix2pix", "--direction", "BtoA", "--batch_size", "1", "--gpu_ids", "-1",
                     "--display_id", "0", "--no_html", "--print_freq", "1", "--display_freq", "1000000",
                     "--max_steps", str(total), "--amp", "none", *args.train_flags]
            opt = train.parse_options(flags, is_train=True)
            train.setup_logging(verbose=False)
            with train.distributed_runtime(opt.gpu_ids, opt.dist_timeout) as runtime:
                train.train(opt, runtime)

    timed_steps = [s for s in clock.steps[args.warmup:] if "total" in s]
    med = {p: statistics.median(s.get(p, 0.0) for s in timed_steps) * 1e3 for p in (*PHASES, "total")}
    med["bookkeeping"] = statistics.median(
        (s["total"] - sum(s.get(p, 0.0) for p in PHASES)) for s in timed_steps) * 1e3
    record = {"bench": "profile_step", "config": args.config, "omp": args.omp, "native_bn": args.native_bn,
              "profiler": not args.no_profiler, "flags": args.train_flags, "steps": len(timed_steps),
              "ms_per_step": {k: round(v, 2) for k, v in med.items()},
              "share": {k: round(v / med["total"], 3) for k, v in med.items() if k != "total"}}
    if prof is not None:
        events = prof.key_averages()
        top = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:args.top]
        per_step = max(len(timed_steps), 1)
        record.update({
            "batch_norm_ms_per_step": {k: round(v / per_step, 2) for k, v in bn_share(events).items()},
            "top_self_cpu_ms_per_step": {e.key: round(e.self_cpu_time_total / 1e3 / per_step, 2) for e in top},
            **({"top_by_shape_ms_per_step": top_by_shape(prof, args.top, per_step)} if args.shapes else {}),
            "note": "phase times include the profiler's per-operator overhead; compare shares, "
                    "and take absolute step times from --no_profiler or vs_reference.py"})
    emit([record], args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
