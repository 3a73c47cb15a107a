"""Which torch build install.sh installs on a machine without an NVIDIA GPU: the one measured
fastest for this CPU's class, when the disk holds it.

Standard library only: it runs before torch exists. The figures live in one place,
requirements/torch_builds.json; adding a CPU class there is a data-only change.

    python3 scripts/torch_choice.py --env-prefix PREFIX   # BUILD=, PIP=, REASON= lines for install.sh
    python3 scripts/torch_choice.py --readme-table        # the README's table of the figures

PIX2PIX_CPU_FLAGS (space-separated) stands in for /proc/cpuinfo's flags and PIX2PIX_FREE_GB for
the free disk space, so that the tests can ask for any machine.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Optional, Sequence

DATA = Path(__file__).resolve().parents[1] / "requirements" / "torch_builds.json"
CPUINFO = Path("/proc/cpuinfo")
# The index's default build on Linux x86_64 is the CUDA one: 5.5-7 GB installed with its NVIDIA
# libraries, and pip keeps the downloaded wheels in its cache while it unpacks them.
INDEX_GB_NEEDED = 9.0
BUILDS = ("cpu", "index")   # PyTorch's CPU-only build; the package index's default build
FIELDS = ("build", "torch", "pip", "s_per_step", "what", "cpu", "source")


@dataclass(frozen=True)
class CpuClass:
    name: str
    needs: frozenset[str]   # every one of these flags
    human: str


# First match wins, so the richest instruction set comes first.
CPU_CLASSES = (
    CpuClass("amx", frozenset({"amx_tile", "amx_bf16"}), "Intel Xeon with AMX (Sapphire Rapids or later)"),
    CpuClass("avx512_bf16", frozenset({"avx512_bf16"}), "AVX-512 with bf16 (e.g. AMD Zen 4, Intel Cooper Lake)"),
    CpuClass("avx512", frozenset({"avx512f"}), "AVX-512 without bf16 (e.g. Intel Skylake to Ice Lake Xeons)"),
    CpuClass("avx2", frozenset({"avx2"}), "AVX2 only (e.g. AMD EPYC Zen 2/3, Intel Haswell to Comet Lake)"),
)
OTHER = CpuClass("other", frozenset(), "older x86 without AVX2, or ARM")
UNKNOWN = CpuClass("unknown", frozenset(), "CPU flags not readable (e.g. macOS)")
HUMAN = {c.name: c.human for c in (*CPU_CLASSES, OTHER, UNKNOWN)}


class MeasurementsError(ValueError):
    """The data file is not what this script reads."""


@dataclass(frozen=True)
class Measured:
    build: str
    torch: str
    pip: str
    s_per_step: float
    what: str
    cpu: str
    source: str
    s_per_step_range: Optional[tuple[float, float]] = None


@dataclass(frozen=True)
class Choice:
    build: str              # "cpu" or "index"
    pip: Optional[str]      # the requirement to install; None: the newest CPU-only build pip sees
    reason: str


def cpu_class(flags: Iterable[str]) -> str:
    present = set(flags)
    return next((c.name for c in CPU_CLASSES if c.needs <= present), OTHER.name)


def machine_flags(cpuinfo: Path = CPUINFO) -> Optional[set[str]]:
    """This CPU's flags; None where they cannot be read. An ARM cpuinfo has no flags line: empty."""
    if "PIX2PIX_CPU_FLAGS" in os.environ:
        return set(os.environ["PIX2PIX_CPU_FLAGS"].split())
    try:
        text = cpuinfo.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return set(value.split())
    return set()


def _entry(data: Mapping, where: str) -> Measured:
    missing = [f for f in FIELDS if f not in data]
    if missing:
        raise MeasurementsError(f"{where}: missing {', '.join(missing)}")
    if data["build"] not in BUILDS:
        raise MeasurementsError(f"{where}: build {data['build']!r} is none of {', '.join(BUILDS)}")
    if not isinstance(data["s_per_step"], (int, float)) or data["s_per_step"] <= 0:
        raise MeasurementsError(f"{where}: s_per_step must be a positive number of seconds")
    if not str(data["source"]).strip():
        raise MeasurementsError(f"{where}: source is empty (say where the figure comes from)")
    low_high = data.get("s_per_step_range")
    if low_high is not None and not (isinstance(low_high, list) and len(low_high) == 2
                                     and all(isinstance(x, (int, float)) for x in low_high)):
        raise MeasurementsError(f"{where}: s_per_step_range must be [low, high] in seconds")
    return Measured(**{f: data[f] for f in FIELDS},
                    s_per_step_range=tuple(low_high) if low_high is not None else None)


def parse_measurements(data: Mapping, where: str = str(DATA)) -> dict[str, list[Measured]]:
    classes = data.get("classes") if isinstance(data, Mapping) else None
    if not isinstance(classes, Mapping):
        raise MeasurementsError(f"{where}: no 'classes' object")
    known = {c.name for c in CPU_CLASSES}
    table: dict[str, list[Measured]] = {}
    for name, entries in classes.items():
        if name not in known:
            raise MeasurementsError(f"{where}: unknown CPU class {name!r} (known: {', '.join(sorted(known))})")
        table[name] = [_entry(e, f"{where}: {name}[{i}]") for i, e in enumerate(entries)]
        # Figures are compared within a class: from one CPU, by one measure.
        for field in ("cpu", "what"):
            if len({getattr(m, field) for m in table[name]}) > 1:
                raise MeasurementsError(f"{where}: {name}: the entries differ in {field!r}, so they do not compare")
    return table


def load_measurements(path: Path = DATA) -> dict[str, list[Measured]]:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise MeasurementsError(f"{path}: {err}") from None
    return parse_measurements(data, str(path))


def _figures(best: Measured, others: Sequence[Measured]) -> str:
    against = ", ".join(f"{m.s_per_step:.3f} for {m.torch}" for m in others)
    return (f"torch {best.torch} measured {best.s_per_step:.3f} s/step"
            + (f" against {against}" if against else "") + f" ({best.what}; {best.cpu})")


def clearly_faster(a: Measured, b: Measured) -> bool:
    """Whether ``a`` beat ``b`` beyond the spread of their rounds: a's slowest round faster than
    b's fastest where both have ranges. A 6 GB install is not worth a difference the rounds
    do not show."""
    if a.s_per_step_range is None or b.s_per_step_range is None:
        return a.s_per_step < b.s_per_step
    return a.s_per_step_range[1] < b.s_per_step_range[0]


def choose(cls: str, measurements: Mapping[str, Sequence[Measured]], free_gb: float,
           index_gb_needed: float = INDEX_GB_NEEDED) -> Choice:
    builds = sorted(measurements.get(cls, ()), key=lambda m: m.s_per_step)
    human = HUMAN.get(cls, cls)
    if not builds:
        return Choice("cpu", None, f"no measurement for CPU class {cls} ({human}): the smaller CPU-only build")
    best, others = builds[0], builds[1:]
    figures = f"{human}: {_figures(best, others)}"
    if best.build == "cpu":
        return Choice("cpu", None, f"{figures}, so the CPU-only build")
    cpu = next((m for m in others if m.build == "cpu"), None)
    if cpu is not None and not clearly_faster(best, cpu):
        return Choice("cpu", None, f"{figures}; the ranges overlap, so the smaller CPU-only build")
    if free_gb < index_gb_needed:
        return Choice("cpu", None, f"{figures}, but the index's build needs ~{index_gb_needed:.0f} GB and "
                                   f"{free_gb:.0f} GB are free, so the CPU-only build")
    return Choice("index", best.pip, f"{figures}, so the index's build (needs ~{index_gb_needed:.0f} GB, "
                                     f"{free_gb:.0f} GB free)")


def free_gb(prefix: Path) -> float:
    """Free space on the disk that holds (or will hold) the environment at ``prefix``."""
    if "PIX2PIX_FREE_GB" in os.environ:
        return float(os.environ["PIX2PIX_FREE_GB"])
    existing = prefix.resolve()
    while not existing.exists():
        existing = existing.parent
    return shutil.disk_usage(existing).free / 1e9


def readme_table(measurements: Mapping[str, Sequence[Measured]]) -> str:
    """The README's table: every figure of the data file, and what install.sh picks per class."""
    rows = ["| CPU class | CPU measured | measure | torch build | s/step (range) | install.sh picks | source |",
            "|---|---|---|---|---|---|---|"]
    for cls, builds in measurements.items():
        picked = choose(cls, measurements, free_gb=float("inf"))
        ranked = sorted(builds, key=lambda m: m.s_per_step)
        chosen_one = next(m for m in ranked if m.build == picked.build)
        for m in ranked:
            spread = f" ({m.s_per_step_range[0]}-{m.s_per_step_range[1]})" if m.s_per_step_range else ""
            kind = "CPU-only" if m.build == "cpu" else "index's default"
            chosen = "**yes**" if m is chosen_one else "no"
            rows.append(f"| {HUMAN[cls]} | {m.cpu} | {m.what} | {kind} {m.torch} | {m.s_per_step:.3f}{spread} | "
                        f"{chosen} | {m.source} |")
    return "\n".join(rows)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env-prefix", type=Path, help="where the environment lives (for its free disk space)")
    parser.add_argument("--readme-table", action="store_true", help="print the README's table of the figures")
    parser.add_argument("--data", type=Path, default=DATA, help="the measurements file")
    args = parser.parse_args(argv)
    try:
        measurements = load_measurements(args.data)
    except MeasurementsError as err:
        print(f"torch_choice.py: {err}", file=sys.stderr)
        return 1
    if args.readme_table:
        print(readme_table(measurements))
        return 0
    if args.env_prefix is None:
        parser.error("give --env-prefix or --readme-table")
    flags = machine_flags()
    cls = UNKNOWN.name if flags is None else cpu_class(flags)
    choice = choose(cls, measurements, free_gb(args.env_prefix))
    print(f"BUILD={choice.build}\nPIP={choice.pip or ''}\nREASON={choice.reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
