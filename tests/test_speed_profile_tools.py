"""benchmarks/profile_step.py's phase clock, benchmarks/conv_backward.py's layer census,
benchmarks/native_rule.py's rules and benchmarks/transposed_forward.py's swap, against a fake
clock and hand-computed U-Net shapes."""
from __future__ import annotations

import argparse

import pytest
from torch import nn

from benchmarks import conv_backward, native_rule, profile_step, transposed_forward
from models.networks import conv


class FakeTime:
    """A clock that moves only when told: ``spend(s)`` stands for work that takes s seconds."""

    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t

    def spend(self, seconds: float) -> None:
        self.t += seconds


def test_the_step_clock_splits_known_work():
    """A loader that takes 30 ms a batch and a step of 20 + 10 ms phases plus 15 ms of
    unlabelled work: the clock must give back those figures, the unlabelled time as bookkeeping."""
    fake = FakeTime()
    clock = profile_step.StepClock(now=fake)

    class SlowLoader:
        def __len__(self) -> int:
            return 4

        def __iter__(self):
            for i in range(4):
                fake.spend(0.03)
                yield i
    loader = profile_step.ProfiledLoader(SlowLoader(), clock, on_step=lambda: None)
    assert len(loader) == 4

    def work(seconds: float):
        return lambda: fake.spend(seconds)
    forward = profile_step.timed(clock, "G_forward", work(0.02))
    backward = profile_step.timed(clock, "G_backward", work(0.01))
    for _ in loader:
        forward()
        backward()
        fake.spend(0.015)
    assert len(clock.steps) == 5 and clock.steps[-1] == {}   # the last one is the end: nothing in it
    for step in clock.steps[:4]:
        assert step["data"] == pytest.approx(0.03, abs=1e-9)
        assert step["G_forward"] == pytest.approx(0.02, abs=1e-9)
        assert step["G_backward"] == pytest.approx(0.01, abs=1e-9)
        assert step["total"] == pytest.approx(0.075, abs=1e-9)   # 30 + 20 + 10 + 15 ms


@pytest.mark.parametrize("down_max,native_downs", [(1, [2]), (8, [16, 8, 4, 2])])
def test_the_layer_census_and_the_rule_per_layer(down_max, native_downs):
    # unet_128 at 128 px: 7 down convolutions (inputs 128, 64, ..., 2) and 7 transposed ones
    # (inputs 1, 2, 4, ..., 64). The rule takes the native kernels for the transposed inputs
    # of side <= 8 (1, 2, 4, 8) and the down convolutions whose output side is at most
    # down_max: 1 without AMX (input 2), 8 with it (inputs 16 down to 2). Pinned, so the test
    # does not depend on the CPU it runs on.
    records = conv_backward.run(conv_backward.argparse.Namespace(configs="unet_128:8:128", rounds=1, repeats=2,
                                                                 down_max_out_side=down_max))
    downs = [r for r in records if r["kind"] == "Conv2d"]
    ups = [r for r in records if r["kind"] == "ConvTranspose2d"]
    assert [r["input"][-1] for r in downs] == [128, 64, 32, 16, 8, 4, 2]
    assert sorted(r["input"][-1] for r in ups) == [1, 2, 4, 8, 16, 32, 64]
    assert [r["input"][-1] for r in downs if r["rule_takes_native"]] == native_downs
    assert sorted(r["input"][-1] for r in ups if r["rule_takes_native"]) == [1, 2, 4, 8]
    assert all(r["onednn_ms"] > 0 and r["native_ms"] > 0 for r in records)


@pytest.mark.parametrize("rule,native_ups,native_downs", [("4:2", [1, 2, 4], [2, 4]), ("0:0", [], []),
                                                         ("16:1", [1, 2, 4, 8, 16], [2])])
def test_the_native_rule_benchmark_steps_under_the_rule_it_names(monkeypatch, rule, native_ups, native_downs):
    # unet_128 at 128 px (inputs as in the census above): T:D makes the transposed layers with
    # input side <= T and the down layers with output side <= D (input 2D) take the native Function.
    monkeypatch.setitem(native_rule.CONFIGS, "tiny", ("unet_128", 4, 128))
    seen: list = []
    real_probe_step = native_rule.probe_step

    def probe_and_census(model, batch, amp, device):
        found: list = []
        hooks = [m.register_forward_hook(lambda m, args, out: found.append(
            (type(m).__name__, args[0].shape[-1], type(out.grad_fn).__name__.startswith("_NativeKernelConv"))))
            for m in native_rule.unwrap(model.net_G).modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
        step = real_probe_step(model, batch, amp, device)

        def census_step() -> None:
            found.clear()
            step()
            seen.append(list(found))
            for hook in hooks if len(seen) == 1 else []:
                hook.remove()
        return census_step

    monkeypatch.setattr(native_rule, "probe_step", probe_and_census)
    records = native_rule.run(argparse.Namespace(config="tiny", amp="none", rules=f"{rule},cpu", rounds=2))
    census = seen[0]
    assert sorted(side for kind, side, native in census if kind == "ConvTranspose2d" and native) == native_ups
    assert sorted(side for kind, side, native in census if kind == "Conv2d" and native) == native_downs
    assert [r["rule"] for r in records] == [rule, "cpu"] and records[0]["vs_first"] == 1.0
    assert [r["transposed_max_in_side"] for r in records] == [int(rule.split(":")[0]), 8]
    assert all(len(r["per_round_s"]) == 2 and r["s_per_step"] > 0 for r in records)


@pytest.mark.parametrize("bad", ["8", "8:x", "cpu,:1"])
def test_the_native_rule_benchmark_refuses_a_rule_it_cannot_read(bad, capsys):
    with pytest.raises(SystemExit) as stop:
        native_rule.main(["--rules", bad])
    assert stop.value.code == 2 and "--rules" in capsys.readouterr().err


def test_the_transposed_forward_benchmark_steps_each_forward_in_turn_and_restores_ours(monkeypatch):
    # unet_128 at 128 px: four native transposed layers (inputs 1, 2, 4, 8) per training step;
    # a warm-up step and one step in each of 2 rounds per variant: 3 steps, 12 calls each.
    monkeypatch.setitem(transposed_forward.CONFIGS, "tiny", ("unet_128", 4, 128))
    ours, calls = conv._transposed_forward, {"ours": 0, "aten": 0}

    def counted(name, forward):
        def call(*args):
            calls[name] += 1
            return forward(*args)
        return call
    monkeypatch.setattr(conv, "_transposed_forward", counted("ours", ours))
    monkeypatch.setattr(transposed_forward, "aten_forward", counted("aten", transposed_forward.aten_forward))
    swapped_in = conv._transposed_forward
    records = transposed_forward.run(argparse.Namespace(config="tiny", amp="none", rounds=2, steps=1))
    assert calls == {"ours": 12, "aten": 12}
    assert conv._transposed_forward is swapped_in   # what it found, put back
    assert [r["forward"] for r in records] == ["ours", "aten"] and records[1]["vs_aten"] == 1.0
    assert all(len(r["per_round_s"]) == 2 and r["s_per_step"] > 0 for r in records)
