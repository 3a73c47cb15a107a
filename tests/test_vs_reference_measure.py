"""benchmarks/vs_reference.py's two measures: the whole-run one ((wall of N steps - wall of M
steps) / (N - M)) and the median step-line gap, the distribution of step times, the slow steps
and the end-of-run time, checked against hand computation. A fake train.py prints the lines of
a planned run (start-up, steady steps, a slow early step, a stall, end-of-run work) and a fake
clock gives each line the time the plan says, so every figure is exact."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks import vs_reference, whole_run
from benchmarks.whole_run import ProcessTiming, distribution, round_measure

FACADES = Path(__file__).resolve().parent / "fixtures" / "facades"

# Shared by the fake train.py (which prints the lines) and the test (which clocks them).
PLAN = '''
def plan(argv):
    """(seconds from the start, line) for each line printed, and the seconds at the exit.
    Start-up 2 s; steps of 0.1 s (0.08 s without --amp none); step 4 takes 0.25 s and step 12
    0.5 s; the last step line is followed 0.8 s later by the end-of-run line, and the exit
    comes 1.1 s after the last step line. Without --amp none, the --amp auto probe's line."""
    steps = int(argv[argv.index("--max_steps") + 1])
    gap = 0.1 if "none" in argv else 0.08
    lines, t = [(0.5, "----------------- Options ---------------"), (0.6, "")], 2.0
    if gap != 0.1:
        lines.append((1.5, "--amp auto: bf16 (probe step fp32 0.100 s, bf16 0.080 s)"))
    for k in range(1, steps + 1):
        t += 0 if k == 1 else {4: 0.25, 12: 0.5}.get(k, gap)
        lines.append((t, f"(epoch 1, step {k}, 0.100s/sample) G_GAN: 0.693 G_L1: 0.400"))
    lines.append((t + 0.8, f"stopped after --max_steps {steps}; resume with --continue_train"))
    return lines, t + 1.1
'''
FAKE_TRAIN = PLAN + '''
import sys
from pathlib import Path
folder = Path(sys.argv[sys.argv.index("--checkpoints_dir") + 1]) / "bench"
folder.mkdir(parents=True)
amp = "none" if "none" in sys.argv else "auto -> bf16"
(folder / "train_opt.txt").write_text(f"  amp: {amp} (decided by --amp)\\n  lr: 0.0002\\n  omp_wait: default (x)\\n")
for _, line in plan(sys.argv)[0]:
    print(line)
'''
namespace: dict = {}
exec(PLAN, namespace)
plan = namespace["plan"]


def planned_clock(argv: list[str]):
    """Read once at the start, once per printed line, once at the exit, as time_process does."""
    lines, exit_s = plan(argv)
    times = iter([0.0, *(t for t, _ in lines), exit_s])
    return lambda: next(times)


def planned(steps: int, amp: str = "none") -> ProcessTiming:
    lines, exit_s = plan(["--max_steps", str(steps), "--amp", amp])
    stamps = tuple(t for t, line in lines if line.startswith("(epoch"))
    return ProcessTiming(stamps, exit_s, ((0.8, "stopped"),))


def test_both_measures_and_the_parts_of_their_difference_by_hand() -> None:
    m = round_measure(planned(22), planned(2), warmup=5)
    # Step 22's line at 2.0 + 19 x 0.1 + 0.25 + 0.5 = 4.65 s, exit 5.75 s; step 2's at 2.1 s, exit 3.2 s.
    assert m["wall_s"] == pytest.approx(5.75) and m["wall_s_short"] == pytest.approx(3.2)
    assert m["s_per_step_wall"] == pytest.approx(2.55 / 20)
    # Steps 6..22 (17 gaps): sixteen of 0.1 and the 0.5 s stall.
    timed = [0.1] * 6 + [0.5] + [0.1] * 10
    assert m["s_per_step_gap"] == pytest.approx(0.1) and m["steps_timed"] == 17
    assert m["gap_mean"] == pytest.approx(2.1 / 17) and m["gap_sum"] == pytest.approx(2.1)
    assert m["gap_p90"] == pytest.approx(np.percentile(timed, 90)) and m["gap_max"] == pytest.approx(0.5)
    assert [k for k, _ in m["slow_steps"]] == [4, 12]   # the warm-up's slow step is listed too
    assert m["first_line_s"] == 2.0 and m["end_s"] == pytest.approx(1.1) and m["end_s_short"] == pytest.approx(1.1)
    # Steps 3..5 (0.1, 0.25, 0.1) are in the wall measure, not in the gap one: 0.15 s above the
    # median; steps 6..22 are 0.4 s above it; start-up and end-of-run were alike.
    parts = m["wall_minus_gap"]
    assert parts["early_steps"] == pytest.approx(0.15 / 20) and parts["spread"] == pytest.approx(0.4 / 20)
    assert parts["start_diff"] == pytest.approx(0) and parts["end_diff"] == pytest.approx(0)
    assert sum(parts.values()) == pytest.approx(m["s_per_step_wall"] - m["s_per_step_gap"])


def test_start_and_end_that_differ_between_the_pair_are_parts_of_their_own() -> None:
    long, short = planned(22), planned(2)
    slow_start = ProcessTiming(tuple(t + 0.3 for t in short.stamps), short.exit_s + 0.3 - 0.2)  # end 0.2 s shorter
    m = round_measure(long, slow_start, warmup=5)
    assert m["s_per_step_wall"] == pytest.approx((5.75 - 3.3) / 20)
    assert m["wall_minus_gap"]["start_diff"] == pytest.approx(-0.3 / 20)
    assert m["wall_minus_gap"]["end_diff"] == pytest.approx(0.2 / 20)
    assert sum(m["wall_minus_gap"].values()) == pytest.approx(m["s_per_step_wall"] - m["s_per_step_gap"])


def test_a_short_run_past_the_warmup_leaves_no_early_part() -> None:
    m = round_measure(planned(22), planned(13), warmup=5)
    # Steps 14..22, nine of 0.1 s: the stall at step 12 is in neither process's difference.
    assert m["s_per_step_wall"] == pytest.approx(0.1)
    assert m["wall_minus_gap"]["early_steps"] == 0 and m["wall_minus_gap"]["spread"] == pytest.approx(0)


def test_the_warmup_leaves_out_exactly_its_steps() -> None:
    """Lines at 1.0, 1.3, 1.6, 1.7, 1.8, 1.9: steps 2..6 take 0.3, 0.3, 0.1, 0.1, 0.1; a warm-up
    of 3 leaves steps 4, 5, 6."""
    d = distribution((1.0, 1.3, 1.6, 1.7, 1.8, 1.9), warmup=3)
    assert d["steps_timed"] == 3 and d["gap_median"] == pytest.approx(0.1) and d["gap_sum"] == pytest.approx(0.3)
    assert [k for k, _ in d["slow_steps"]] == [2, 3]
    with pytest.raises(ValueError, match="fewer than 2"):
        distribution((1.0, 1.3, 1.6), warmup=2)


def fake_project(tmp_path: Path, monkeypatch) -> None:
    """Our train.py replaced by the fake, each of its processes read on its planned clock."""
    (tmp_path / "train.py").write_text(FAKE_TRAIN)
    monkeypatch.setattr(vs_reference, "ROOT", tmp_path)
    real = whole_run.time_process
    monkeypatch.setattr(vs_reference, "time_process",
                        lambda cmd, env, line, cwd: real(cmd, env, line, cwd, clock=planned_clock(cmd)))


def test_the_benchmark_reports_both_measures_from_whole_processes(tmp_path, monkeypatch, capsys) -> None:
    fake_project(tmp_path, monkeypatch)
    out = tmp_path / "out.jsonl"
    args = vs_reference.parse(["--variants", "fp32,shipped", "--configs", "small", "--rounds", "2",
                               "--dataroot", str(FACADES), "--out", str(out)])
    assert (args.steps, args.short_steps, args.warmup) == (22, 2, 5)
    fp32, shipped = vs_reference.run(args)
    assert fp32["s_per_step_wall"] == pytest.approx(0.1275) and fp32["per_round_wall"] == [0.1275, 0.1275]
    assert fp32["s_per_step_gap"] == pytest.approx(0.1) and fp32["per_round_gap"] == [0.1, 0.1]
    # Shipped: 19 steps of 0.08 and the same two slow ones; (4.27 + 1.1 - 2.08 - 1.1) / 20 s/step.
    assert shipped["s_per_step_wall"] == pytest.approx(2.19 / 20)
    assert shipped["vs_fp32_wall"] == round(2.19 / 2.55, 3) and shipped["vs_fp32_gap"] == 0.8
    assert fp32["slow_steps"] == [[[4, 0.25], [12, 0.5]]] * 2 and fp32["gap_max"] == 0.5
    assert fp32["end_s"] == pytest.approx(1.1) and fp32["first_line_s"] == 2.0
    assert fp32["end_lines"] == [[0.8, "stopped after --max_steps 22; resume with --continue_train"]]
    assert fp32["wall_minus_gap"] == {"early_steps": 0.0075, "spread": 0.02, "start_diff": 0.0, "end_diff": 0.0}
    # Each process's start-up decisions, the long one first in round 1, the short one in round 2.
    assert fp32["rounds"][0]["decided"] == ["22 steps: amp: none (decided by --amp)", "22 steps: omp_wait: default (x)",
                                            "2 steps: amp: none (decided by --amp)", "2 steps: omp_wait: default (x)"]
    assert fp32["rounds"][1]["decided"][0].startswith("2 steps:")
    probe = "22 steps, at 1.5 s: --amp auto: bf16 (probe step fp32 0.100 s, bf16 0.080 s)"
    assert probe in shipped["rounds"][0]["decided"]
    assert [json.loads(line)["variant"] for line in out.read_text().splitlines()] == ["fp32", "shipped"]
    err = capsys.readouterr().err
    assert "small round 1/2 fp32: wall 0.12" in err   # 0.1275 (its last digit is float rounding's)
    assert ("s/step, gap median 0.100 (mean 0.124, p90 0.100, max 0.500, 2 slow), first line 2.0 s, "
            "end of run 1.10 s") in err
    row = next(line for line in err.splitlines() if line.startswith("shipped "))
    assert row.split()[:4] == ["shipped", "0.110", "0.080", "0.86"]


def test_a_process_with_fewer_step_lines_than_asked_stops_the_benchmark(tmp_path, monkeypatch) -> None:
    fake_project(tmp_path, monkeypatch)
    (tmp_path / "train.py").write_text(FAKE_TRAIN.replace("for _, line in plan(sys.argv)[0]:",
                                                          "for _, line in plan(sys.argv)[0][:-2]:"))
    args = vs_reference.parse(["--variants", "fp32", "--configs", "small", "--rounds", "1",
                               "--dataroot", str(FACADES)])
    with pytest.raises(RuntimeError, match="21 step lines where 22 were asked for"):
        vs_reference.run(args)


def test_a_failing_process_is_named_with_its_last_error_lines(tmp_path) -> None:
    script = tmp_path / "train.py"
    script.write_text("import sys\nprint('(epoch 1, step 1, 0.1s/sample)')\n"
                      "sys.exit('train.py: error: --dataroot x: no such folder')\n")
    with pytest.raises(RuntimeError, match="exited with 1: train.py: error: --dataroot x: no such folder"):
        whole_run.time_process([sys.executable, str(script)], {}, vs_reference.STEP_LINE["ours"], tmp_path)
    script.write_text("print('no step here')\n")
    with pytest.raises(RuntimeError, match="printed no step line"):
        whole_run.time_process([sys.executable, str(script)], {}, vs_reference.STEP_LINE["ours"], tmp_path)
