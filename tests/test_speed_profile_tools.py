"""benchmarks/profile_step.py's phase clock and benchmarks/conv_backward.py's layer census,
against known sleeps and hand-computed U-Net shapes."""
from __future__ import annotations

import time

import pytest

from benchmarks import conv_backward, profile_step
from models.networks import conv


def test_the_step_clock_splits_known_sleeps():
    """A loader that takes 30 ms a batch and a step of 20 + 10 ms phases plus 15 ms of
    unlabelled work: the clock must give back those figures, the unlabelled time as bookkeeping."""
    clock = profile_step.StepClock()

    class SlowLoader:
        def __len__(self) -> int:
            return 4

        def __iter__(self):
            for i in range(4):
                time.sleep(0.03)
                yield i
    loader = profile_step.ProfiledLoader(SlowLoader(), clock, on_step=lambda: None)
    assert len(loader) == 4

    def sleeper(seconds: float):
        return lambda: time.sleep(seconds)
    forward = profile_step.timed(clock, "G_forward", sleeper(0.02))
    backward = profile_step.timed(clock, "G_backward", sleeper(0.01))
    for _ in loader:
        forward()
        backward()
        time.sleep(0.015)
    assert len(clock.steps) == 5 and "total" not in clock.steps[-1]   # the last one is the end
    for step in clock.steps[:4]:
        assert step["data"] == pytest.approx(0.03, abs=0.01)
        assert step["G_forward"] == pytest.approx(0.02, abs=0.01)
        assert step["G_backward"] == pytest.approx(0.01, abs=0.01)
        rest = step["total"] - step["G_forward"] - step["G_backward"] - step["data"]
        assert rest == pytest.approx(0.015, abs=0.01)


@pytest.mark.parametrize("down_max,native_downs", [(1, [2]), (8, [16, 8, 4, 2])])
def test_the_layer_census_and_the_rule_per_layer(monkeypatch, down_max, native_downs):
    # unet_128 at 128 px: 7 down convolutions (inputs 128, 64, ..., 2) and 7 transposed ones
    # (inputs 1, 2, 4, ..., 64). The rule takes the native kernels for the transposed inputs
    # of side <= 8 (1, 2, 4, 8) and the down convolutions whose output side is at most
    # down_max: 1 without AMX (input 2), 8 with it (inputs 16 down to 2). Pinned, so the test
    # does not depend on the CPU it runs on.
    monkeypatch.setattr(conv, "DOWN_MAX_OUT_SIDE", down_max)
    records = conv_backward.run(conv_backward.argparse.Namespace(configs="unet_128:8:128", rounds=1, repeats=2))
    downs = [r for r in records if r["kind"] == "Conv2d"]
    ups = [r for r in records if r["kind"] == "ConvTranspose2d"]
    assert [r["input"][-1] for r in downs] == [128, 64, 32, 16, 8, 4, 2]
    assert sorted(r["input"][-1] for r in ups) == [1, 2, 4, 8, 16, 32, 64]
    assert [r["input"][-1] for r in downs if r["rule_takes_native"]] == native_downs
    assert sorted(r["input"][-1] for r in ups if r["rule_takes_native"]) == [1, 2, 4, 8]
    assert all(r["onednn_ms"] > 0 and r["native_ms"] > 0 for r in records)
