"""vs_reference.py's record per (configuration, variant) from its rounds, and the table that
shows, per variant, the whole-run measure beside the step-line one and where they differ."""
from __future__ import annotations

import statistics
from typing import Any, Sequence

# Scalars of a round reported as their median over the rounds (each round's value in ``rounds``).
MEDIANS = ("gap_mean", "gap_p90", "gap_max", "gap_sum", "first_line_s", "first_line_s_short", "end_s",
           "end_s_short", "wall_s", "wall_s_short")
PARTS = ("early_steps", "spread", "start_diff", "end_diff")


def _r(x: float) -> float:
    return round(x, 4)


def measures(rounds: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Both per-step measures (median over rounds) and their per-round lists; the medians of the
    other scalars; the parts of wall minus gap as means over rounds (means add up, medians don't)."""
    walls = [r["s_per_step_wall"] for r in rounds]
    gaps = [r["s_per_step_gap"] for r in rounds]
    out: dict[str, Any] = {"s_per_step_wall": _r(statistics.median(walls)),
                           "s_per_step_gap": _r(statistics.median(gaps)),
                           "per_round_wall": [_r(w) for w in walls], "per_round_gap": [_r(g) for g in gaps]}
    out.update({key: _r(statistics.median(r[key] for r in rounds)) for key in MEDIANS})
    out["wall_minus_gap"] = {k: _r(statistics.fmean(r["wall_minus_gap"][k] for r in rounds)) for k in PARTS}
    out["slow_steps"] = [[[k, _r(g)] for k, g in r["slow_steps"]] for r in rounds]
    out["end_lines"] = rounds[0]["end_lines"]
    out["rounds"] = [{"gaps": [_r(g) for g in r["gaps"]], "steps_timed": r["steps_timed"],
                      "wall_minus_gap": {k: _r(v) for k, v in r["wall_minus_gap"].items()},
                      "decided": r.get("decided", [])} for r in rounds]
    return out


def add_ratios(records: list[dict[str, Any]], baseline: str) -> None:
    """``vs_<baseline>_wall`` and ``vs_<baseline>_gap`` on every record of one configuration."""
    base = next(r for r in records if r["variant"] == baseline)
    for record in records:
        for measure in ("wall", "gap"):
            record[f"vs_{baseline}_{measure}"] = round(record[f"s_per_step_{measure}"]
                                                       / base[f"s_per_step_{measure}"], 3)


def progress_line(config: str, name: str, r: int, rounds: int, m: dict[str, Any], load: float) -> str:
    return (f"{config} round {r + 1}/{rounds} {name}: wall {m['s_per_step_wall']:.3f} s/step, gap median "
            f"{m['s_per_step_gap']:.3f} (mean {m['gap_mean']:.3f}, p90 {m['gap_p90']:.3f}, max "
            f"{m['gap_max']:.3f}, {len(m['slow_steps'])} slow), first line {m['first_line_s']:.1f} s, end of run "
            f"{m['end_s']:.2f} s, load {load:.1f}")


HEADER = (f"{'':<18}{'wall':>7}{'gap':>7}{'ratio wall':>11}{'gap':>6} | {'wall-gap':>8} = {'early':>6} + "
          f"{'spread':>6} + {'start':>6} + {'end':>6} | {'mean':>6}{'p90':>7}{'max':>7}{'slow':>5} | "
          f"{'first line':>10}{'end of run':>11}")


def table(records: Sequence[dict[str, Any]], baseline: str) -> str:
    """One configuration's variants: s/step by the whole-run (wall) and the step-line (gap)
    measure and their ratios to the baseline; wall - gap split into its parts (s/step, mean over
    rounds); the step times after the warm-up; seconds to the first step line and from the last
    one to the exit (N-step process, medians)."""
    lines = [f"{records[0]['config']}: s/step, N={records[0]['steps']} minus M={records[0]['short_steps']} steps, "
             f"warm-up {records[0]['warmup']}, ratios to {baseline}", HEADER]
    for rec in records:
        parts = {k: round(v, 3) + 0.0 for k, v in rec["wall_minus_gap"].items()}   # no "-0.000"
        slow = statistics.median(len(s) for s in rec["slow_steps"])
        lines.append(
            f"{rec['variant']:<18}{rec['s_per_step_wall']:>7.3f}{rec['s_per_step_gap']:>7.3f}"
            f"{rec[f'vs_{baseline}_wall']:>11.2f}{rec[f'vs_{baseline}_gap']:>6.2f} | "
            f"{sum(parts.values()):>8.3f} = {parts['early_steps']:>6.3f} + {parts['spread']:>6.3f} + "
            f"{parts['start_diff']:>6.3f} + {parts['end_diff']:>6.3f} | {rec['gap_mean']:>6.3f}{rec['gap_p90']:>7.3f}"
            f"{rec['gap_max']:>7.3f}{slow:>5g} | {rec['first_line_s']:>10.1f}{rec['end_s']:>11.2f}")
    return "\n".join(lines)
