"""``--amp auto`` by measurement: bf16 only where it is faster for this run's networks.

Native bf16 is not enough: on small images a bf16 step can be slower than fp32 (the casts and
the norms outweigh the faster convolutions) where at 256 px it is faster, and the crossing
point depends on the CPU (benchmarks/README.md, "--amp auto"). So before training a few of the
model's own training steps (optimizers included) are timed in fp32 and in bf16 at the run's
shapes, on copies of the model (the run's weights, buffers, optimizer state and random streams
are untouched), and bf16 is chosen only when it is faster than fp32 by more than ``MARGIN`` and
the timed steps of the two do not overlap. The answer is kept per machine, configuration and
OpenMP waiting policy in a small JSON file, so the probe runs once for each.

``PIX2PIX_AMP_AUTO`` pins the answer without measuring: ``none``, ``bf16``, or ``native`` (bf16
wherever the hardware computes it, without a probe); ``measure`` is the default.
The tests pin it so that a run's arithmetic does not depend on the machine's load.
"""
from __future__ import annotations

import json
import logging
import os
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol, Sequence

import torch
import torch.distributed as dist
from torch import nn

from engine.distributed import unwrap
from engine.machine import signature
from engine.speed import AMP_MODES, SpeedError, native_bf16
from util import omp_env
from util.interleave import rotated

log = logging.getLogger(__name__)

MARGIN = 0.05        # bf16 must save at least 5% of fp32's probe step: less is within the noise
ROUNDS = 5           # timed steps per candidate, interleaved, after one warm-up each
CANDIDATES = tuple(e.name for e in AMP_MODES if e.meta.get("auto_candidate"))   # fp32 ("none") and bf16
PIN_ENV = "PIX2PIX_AMP_AUTO"
PINS = ("measure", "native", *CANDIDATES)   # measure: the probe; native: bf16 where the hardware has it
CACHE_FILE = "amp_auto.json"


def amp_pin(env: Mapping[str, str] = os.environ) -> str:
    """``PIX2PIX_AMP_AUTO`` (``measure`` when unset), checked: the one place it is read."""
    pin = env.get(PIN_ENV, "measure").lower()
    if pin not in PINS:
        raise SpeedError(f"{PIN_ENV}={pin!r} is not one of {', '.join(PINS)}")
    return pin


def cache_dir() -> Path:
    explicit = os.environ.get("PIX2PIX_CACHE_DIR")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pix2pix-app"


# -- the decision -----------------------------------------------------------------------------
def decide(times: Mapping[str, Sequence[float]], margin: float = MARGIN) -> str:
    """``bf16`` when its median step beats fp32's by more than ``margin`` and the two sets of
    steps do not overlap (one outlier allowed on each side); else ``none``, the safe answer.

    The overlap test is for loaded machines: there a few medians can favour bf16 by chance
    while the rounds overlap widely, and the run then trains slower than in fp32. Quiet, the
    sets separate."""
    if not times.get("bf16"):
        return "none"
    fp32, bf16 = sorted(times["none"]), sorted(times["bf16"])
    if not statistics.median(bf16) < statistics.median(fp32) * (1 - margin):
        return "none"
    slowest_bf16 = bf16[-2] if len(bf16) > 2 else bf16[-1]
    fastest_fp32 = fp32[1] if len(fp32) > 2 else fp32[0]
    return "bf16" if slowest_bf16 < fastest_fp32 else "none"


def measure(steps: Mapping[str, Callable[[], None]], rounds: int = ROUNDS,
            timer: Callable[[], float] = time.perf_counter) -> dict[str, list[float]]:
    """Time each candidate's step ``rounds`` times, interleaved (order rotated each round) so
    that a load coming and going hits every candidate alike; one untimed warm-up each first
    (oneDNN builds its kernels at the first call of each shape and dtype)."""
    names = list(steps)
    for name in names:
        steps[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in rotated(names, r):
            start = timer()
            steps[name]()
            times[name].append(timer() - start)
    return times


# -- the probe step ---------------------------------------------------------------------------
class TrialModel(Protocol):
    """What the probe needs of a model (models/base_model.py and models/pix2pix_model.py)."""
    nets: Mapping[str, nn.Module]

    def trial_copy(self, amp: str) -> TrialModel: ...

    def set_input(self, batch: dict) -> None: ...

    def train(self) -> None: ...

    def train_step(self) -> dict[str, torch.Tensor]: ...


def probe_step(model: TrialModel, batch: Mapping[str, torch.Tensor], amp: str,
               device: torch.device) -> Callable[[], None]:
    """The model's own training step, in ``amp``, on a copy of the model: the time of what
    training will run (optimizers included), while the model itself stays untouched."""
    twin = model.trial_copy(amp)
    twin.train()
    twin.set_input(dict(batch))

    def step() -> None:
        twin.train_step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    return step


def config_key(opt: Any, device: torch.device, nets: Mapping[str, nn.Module]) -> str:
    # Each network's architecture spec (models/networks/spec.py, kept on the network as
    # ``spec``): every hyperparameter, with no list of them to keep up to date here.
    parts: dict[str, Any] = {f"net{name}": json.dumps(unwrap(net).spec.as_dict(), sort_keys=True)
                             for name, net in sorted(nets.items())}
    parts.update(crop=opt.crop_size, batch=opt.batch_size, channels_last=getattr(opt, "channels_last", False),
                 device=device.type)
    if device.type == "cpu":
        # Whether other work oversubscribed the cores as this process started: with sleeping
        # threads bf16 won on a quiet machine (0.105 against 0.120 s at 128 px) and lost 1.4x on
        # a loaded one, so a decision made in one state is not reused in the other.
        parts["load"] = omp_env.start_load or "unknown"
        # How idle OpenMP threads wait changes the answer: bf16 adds casts, so more parallel
        # regions, and each pays a wake-up when threads sleep: bf16 can win with spinning
        # threads and lose with sleeping ones. A decision is reused only under the same waiting.
        parts["omp_wait"] = "+".join(f"{k}={os.environ[k]}" for k in omp_env.USER_KEYS if k in os.environ) or "default"
    return signature(device) + "|" + ",".join(f"{k}={v}" for k, v in parts.items())


# -- the cache ----------------------------------------------------------------------------------
def read_cache(path: Path) -> dict[str, dict]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}   # absent or damaged: measure again
    return data if isinstance(data, dict) else {}


def write_cache(path: Path, key: str, entry: dict) -> None:
    """Add one entry; written to a temporary file and renamed, so a crash never leaves half a
    file. A cache that cannot be written costs a probe next time, nothing else."""
    data = read_cache(path)
    data[key] = entry
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        os.replace(tmp, path)
    except OSError as err:
        log.warning("--amp auto: could not write %s (%s); the probe will run again next time", path, err)


# -- the entry point ----------------------------------------------------------------------------
def choose_auto_amp(opt: Any, model: TrialModel, resolved: str, device: torch.device,
                    timer: Callable[[], float] = time.perf_counter, pin: str | None = None) -> str:
    """The amp mode a training run uses: ``resolved`` unless ``--amp auto`` asked for a choice
    (then the pinned, cached or measured one; every process of a DDP job gets rank 0's).
    ``pin``: :func:`amp_pin` as the caller read it (None: read it here)."""
    if getattr(opt, "amp", "none") != "auto":
        return resolved
    if pin is None:
        pin = amp_pin()
    if pin in CANDIDATES:
        return pin
    if pin == "native" or not native_bf16(device) or "D" not in model.nets:
        return "bf16" if native_bf16(device) else "none"   # emulated bf16 is always the slower
    choice = ""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0:
        choice = _cached_or_measured(opt, model, device, timer)
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        box = [choice]
        dist.broadcast_object_list(box, src=0)
        choice = box[0]
    return choice


def _cached_or_measured(opt: Any, model: TrialModel, device: torch.device,
                        timer: Callable[[], float]) -> str:
    path = cache_dir() / CACHE_FILE
    key = config_key(opt, device, model.nets)
    entry = read_cache(path).get(key)
    if entry and entry.get("choice") in CANDIDATES:
        log.info("--amp auto: %s (measured before on this machine and configuration, %s)", entry["choice"], path)
        return entry["choice"]
    start = time.perf_counter()
    # Copies, and the random streams restored after: the run itself starts exactly as it
    # would have without the probe (same weights, batch-norm statistics, dropout masks).
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        n, side = opt.batch_size, opt.crop_size
        batch = {"A": torch.rand(n, opt.input_nc, side, side, device=device) * 2 - 1,
                 "B": torch.rand(n, opt.output_nc, side, side, device=device) * 2 - 1}
        times = measure({amp: probe_step(model, batch, amp, device) for amp in CANDIDATES}, timer=timer)
    choice = decide(times)
    medians = {amp: round(statistics.median(t), 4) for amp, t in times.items()}
    log.info("--amp auto: %s (probe step fp32 %.3f s, bf16 %.3f s; %.1f s to measure; kept in %s)", choice,
             medians["none"], medians["bf16"], time.perf_counter() - start, path)
    write_cache(path, key, {"choice": choice, "median_s": medians, "margin": MARGIN})
    return choice
