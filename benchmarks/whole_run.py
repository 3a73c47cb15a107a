"""A whole training process timed as a user waits for it, and what its step lines say.

One clock reads a process's start, the moment each line of its stdout arrives, and its exit.
Two processes with the same flags that differ only in their number of steps, N and M, give the
per-step time a user waits for: (wall of N steps - wall of M steps) / (N - M). Start-up and
end-of-run work are the same in both and cancel; everything from step M's line to step N's
line counts, slow early steps after M and stalls included.

The gaps between step lines inside the N-step process say how that time is spread: step k's
time is the arrival of its line less that of step k - 1 (step 1 cannot be told from start-up).
Their median after a warm-up is the step-line measure; the mean, the 90th percentile, the
largest gap and the slow steps show what the median leaves out. ``round_measure`` splits the
difference of the two measures into parts that add up to it exactly.

No torch here: this process only waits for the ones it measures.
"""
from __future__ import annotations

import re
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from typing import Any, Callable

# A step slower than this many medians is listed by its number: saves, loader refills,
# garbage collection and the like show up there.
SLOW = 2.0
# The lines printed after the last step line (end-of-run work as the program tells it), kept short.
END_LINES, END_LINE_CHARS = 8, 100
# Start-up lines kept with their time: our --amp auto probe runs once per machine, configuration
# and OpenMP waiting policy (then it is read from a cache), so one process of a pair may probe
# and the other not.
NOTE_LINE = re.compile(r"^--amp auto: ")


@dataclass(frozen=True)
class ProcessTiming:
    """Seconds from the process's start: each step line's arrival, the exit, and the lines
    printed after the last step line with their seconds after it."""
    stamps: tuple[float, ...]
    exit_s: float
    end_lines: tuple[tuple[float, str], ...] = ()
    notes: tuple[tuple[float, str], ...] = ()   # NOTE_LINE lines, seconds from the start

    @property
    def first_line_s(self) -> float:
        return self.stamps[0]

    @property
    def end_s(self) -> float:
        """From the last step line to the exit: the program's end-of-run work and its teardown."""
        return self.exit_s - self.stamps[-1]


def time_process(cmd: list[str], env: dict[str, str], step_line: re.Pattern[str], cwd: Any,
                 clock: Callable[[], float] = time.perf_counter) -> ProcessTiming:
    """Run ``cmd`` to its end; ``clock`` is read once at the start, once per line of its stdout
    (as the line arrives) and once at the exit."""
    start = clock()
    stamps: list[float] = []
    after_last: list[tuple[float, str]] = []
    notes: list[tuple[float, str]] = []
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=err, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            now = clock() - start
            if step_line.match(line):
                stamps.append(now)
                after_last = []
            elif line.strip():
                after_last.append((now, line.strip()))
                if NOTE_LINE.match(line):
                    notes.append((round(now, 2), line.strip()[:END_LINE_CHARS]))
        code = proc.wait()
        exit_s = clock() - start
        if code != 0:
            err.seek(0)
            tail = err.read().decode(errors="replace").strip().splitlines()[-3:]
            raise RuntimeError(f"{' '.join(cmd[:3])} exited with {code}: {' | '.join(tail)}")
    if not stamps:
        raise RuntimeError(f"{' '.join(cmd[:3])}: printed no step line")
    ends = tuple((round(t - stamps[-1], 4), text[:END_LINE_CHARS]) for t, text in after_last[:END_LINES])
    return ProcessTiming(tuple(stamps), exit_s, ends, tuple(notes))


def step_gaps(stamps: tuple[float, ...]) -> list[float]:
    """Step k's time for k = 2..N (index k - 2)."""
    return [b - a for a, b in zip(stamps, stamps[1:])]


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between the closest ranks (numpy's default)."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def distribution(stamps: tuple[float, ...], warmup: int) -> dict[str, Any]:
    """The step times after the first ``warmup`` steps, and every slow step by its number
    (the warm-up's too, against the median after it)."""
    gaps = step_gaps(stamps)
    timed = gaps[warmup - 1:]   # steps warmup + 1 .. N
    if len(timed) < 2:
        raise ValueError(f"{len(stamps)} step lines leave fewer than 2 step times after a warm-up of {warmup}")
    median = statistics.median(timed)
    return {"gap_median": median, "gap_mean": statistics.fmean(timed), "gap_p90": percentile(timed, 90),
            "gap_max": max(timed), "gap_sum": sum(timed), "steps_timed": len(timed),
            "slow_steps": [[k, gap] for k, gap in enumerate(gaps, start=2) if gap > SLOW * median],
            "gaps": gaps}


def round_measure(long: ProcessTiming, short: ProcessTiming, warmup: int) -> dict[str, Any]:
    """Both measures of one round and where they differ, from an N-step and an M-step process.

    ``wall_minus_gap`` holds, in seconds per step, four parts that add up exactly to
    ``s_per_step_wall - s_per_step_gap``:
      early_steps: steps M+1 .. warm-up (counted by the wall measure, dropped by the gap
                   measure) beyond the median;
      spread:      steps after both, beyond the median: the mean above the median, stalls;
      start_diff:  the N-step process reached step M's line later than the M-step one did
                   (start-up that differed between the two: noise, or a different decision);
      end_diff:    its end-of-run work took longer than the M-step one's.
    """
    n, m = len(long.stamps), len(short.stamps)
    if m >= n or warmup < 1:
        raise ValueError(f"need M < N step lines and a warm-up of at least 1, got M={m}, N={n}, warm-up {warmup}")
    dist = distribution(long.stamps, warmup)
    median, gaps = dist["gap_median"], dist["gaps"]
    split = max(m, warmup)   # steps M+1..split are early, split+1..N steady
    early = gaps[m - 1:split - 1]
    steady = gaps[split - 1:]
    parts = {"early_steps": sum(early) - median * len(early),
             "spread": sum(steady) - median * len(steady),
             "start_diff": long.stamps[m - 1] - short.stamps[m - 1],
             "end_diff": long.end_s - short.end_s}
    return {"s_per_step_wall": (long.exit_s - short.exit_s) / (n - m), "s_per_step_gap": median, **dist,
            "wall_minus_gap": {k: v / (n - m) for k, v in parts.items()},
            "wall_s": long.exit_s, "wall_s_short": short.exit_s,
            "first_line_s": long.first_line_s, "first_line_s_short": short.first_line_s,
            "end_s": long.end_s, "end_s_short": short.end_s, "end_lines": [list(e) for e in long.end_lines]}
