"""The rotation every interleaved measurement runs its candidates in (util/interleave.py)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from util.interleave import rotated

ROOT = Path(__file__).resolve().parent.parent


def test_each_round_runs_every_candidate_once_rotated_by_one():
    names = ["a", "b", "c"]
    assert [rotated(names, r) for r in range(4)] == [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"],
                                                     ["a", "b", "c"]]
    assert rotated(("x",), 5) == ["x"]
    assert names == ["a", "b", "c"]   # the caller's list is left as it was


def test_over_as_many_rounds_as_candidates_each_takes_every_position_once():
    names = ["fp32", "bf16", "nhwc", "ref"]
    orders = [rotated(names, r) for r in range(len(names))]
    for position in range(len(names)):
        assert sorted(order[position] for order in orders) == sorted(names)


def test_vs_reference_still_starts_without_torch():
    # It only waits for the processes it measures; importing the rotation must not load torch.
    code = "import sys, benchmarks.vs_reference; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
