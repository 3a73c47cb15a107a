"""What a start of train.py or test.py imports: not torchmetrics (and with it scipy), which
cost as much import time as torch itself and is needed only where metrics are computed."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torchmetrics", "scipy")

STARTS = """
import json, runpy, sys
sys.argv = [{script!r}, "--help"]
try:
    runpy.run_path({script!r}, run_name="__main__")
except SystemExit:
    pass
print("MODULES " + json.dumps(sorted({{m.split(".")[0] for m in sys.modules}})))
"""


@pytest.mark.parametrize("script", ["train.py", "test.py"])
def test_a_start_does_not_import_the_metrics_library(script):
    out = subprocess.run([sys.executable, "-c", STARTS.format(script=script)], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    loaded = json.loads(next(line for line in out.splitlines() if line.startswith("MODULES "))[8:])
    assert "torch" in loaded and "options" in loaded   # the start really ran
    assert not set(HEAVY) & set(loaded)


def test_metrics_still_compute_after_the_deferred_import():
    # In a fresh interpreter, so the import inside written_metrics is the first one.
    code = ("import json, numpy as np; from reporting.metrics import written_metrics; "
            "a = np.zeros((8, 8, 3), np.uint8); b = a.copy(); b[0, 0, 0] = 255; "
            "print(json.dumps(written_metrics(b, a)))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    got = json.loads(out)
    mse = 1 / (8 * 8 * 3)   # one pixel channel off by the whole range, in [0, 1]
    assert got["L1"] == pytest.approx(mse)
    assert got["PSNR"] == pytest.approx(10 * np.log10(1 / mse), abs=1e-4)
    assert 0 < got["SSIM"] < 1
