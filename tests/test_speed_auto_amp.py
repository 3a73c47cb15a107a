"""--amp auto by measurement (engine/amp_auto.py): the decision, the interleaved timing, the
cache, the pins, and that the probe leaves the run untouched. Fake clocks make every choice
here deterministic; the real timing is measured in benchmarks/ (README "Speed")."""
from __future__ import annotations

import json

import pytest
import torch

import engine.amp_auto as amp_auto
from engine.speed import SpeedError
from models import create_model
from options.parse import parse_options
from engine.distributed import single_process_runtime

TINY = ["--dataroot", "unused", "--gpu_ids", "-1", "--netG", "unet_128", "--ngf", "4", "--ndf", "4",
        "--crop_size", "128", "--load_size", "128", "--display_id", "0"]


def tiny(*extra: str):
    opt = parse_options([*TINY, *extra], is_train=True)
    torch.manual_seed(0)
    return opt, create_model(opt, single_process_runtime([]))


class FakeClock:
    """Each candidate's step advances the clock by its given cost; the timer reads the clock."""

    def __init__(self, costs: dict[str, float]) -> None:
        self.now = 0.0
        self.costs = costs
        self.calls: list[str] = []

    def timer(self) -> float:
        return self.now

    def step_for(self, amp: str):
        def step() -> None:
            self.calls.append(amp)
            self.now += self.costs[amp]
        return step


@pytest.fixture
def measured(monkeypatch, tmp_path):
    """--amp auto with measuring switched on, a bf16-capable device, the cache in tmp_path."""
    monkeypatch.setenv("PIX2PIX_AMP_AUTO", "measure")
    monkeypatch.setenv("PIX2PIX_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(amp_auto, "native_bf16", lambda device: True)
    return tmp_path / amp_auto.CACHE_FILE


def fake_probe(monkeypatch, clock: FakeClock) -> None:
    monkeypatch.setattr(amp_auto, "probe_step", lambda model, batch, amp, device: clock.step_for(amp))


@pytest.mark.parametrize("fp32,bf16,expected", [
    (1.0, 0.90, "bf16"),   # 10% faster: worth it
    (1.0, 0.96, "none"),   # 4%: within the 5% margin, stay fp32
    (1.0, 1.20, "none"),   # slower
])
def test_decide_takes_bf16_only_beyond_the_margin(fp32, bf16, expected):
    # Medians, so one outlier step (a load spike) does not decide.
    times = {"none": [fp32, fp32, 9.0], "bf16": [bf16, 9.0, bf16]}
    assert amp_auto.decide(times) == expected


def test_decide_stays_fp32_when_noisy_rounds_overlap():
    # Medians 1.0 against 0.85 (15% faster), but the rounds interleave: a loaded machine's noise.
    times = {"none": [1.0, 0.7, 1.3, 0.8, 1.2], "bf16": [0.9, 0.6, 1.25, 0.85, 0.7]}
    assert amp_auto.decide(times) == "none"
    # The same medians with separated rounds (one outlier each side allowed): bf16.
    times = {"none": [1.0, 0.7, 1.3, 1.05, 1.2], "bf16": [0.9, 0.8, 1.25, 0.85, 0.84]}
    assert amp_auto.decide(times) == "bf16"
    assert amp_auto.decide({"none": [1.0], "bf16": []}) == "none"


def test_measure_interleaves_after_an_untimed_warmup():
    clock = FakeClock({"none": 1.0, "bf16": 0.25})
    times = amp_auto.measure({"none": clock.step_for("none"), "bf16": clock.step_for("bf16")}, rounds=3,
                             timer=clock.timer)
    assert clock.calls == ["none", "bf16", "none", "bf16", "bf16", "none", "none", "bf16"]
    assert times == {"none": [1.0, 1.0, 1.0], "bf16": [0.25, 0.25, 0.25]}


@pytest.mark.parametrize("costs,expected", [({"none": 1.0, "bf16": 0.5}, "bf16"),
                                            ({"none": 1.0, "bf16": 1.5}, "none")])
def test_auto_follows_the_measurement_and_caches_it_per_configuration(measured, monkeypatch, costs, expected):
    clock = FakeClock(costs)
    fake_probe(monkeypatch, clock)
    opt, model = tiny("--amp", "auto")
    cpu = torch.device("cpu")
    assert amp_auto.choose_auto_amp(opt, model, model.amp, cpu, timer=clock.timer) == expected
    assert len(clock.calls) == 2 * (1 + amp_auto.ROUNDS)
    entry = json.loads(measured.read_text())[amp_auto.config_key(opt, cpu, model.nets)]
    assert entry["choice"] == expected and entry["median_s"] == {"none": costs["none"], "bf16": costs["bf16"]}
    # The same machine and configuration: the cached answer, no probe, even if times changed.
    clock.costs = {"none": costs["bf16"], "bf16": costs["none"]}
    assert amp_auto.choose_auto_amp(opt, model, model.amp, cpu, timer=clock.timer) == expected
    assert len(clock.calls) == 2 * (1 + amp_auto.ROUNDS)
    # Another configuration (ngf) is measured on its own, and both answers are kept.
    opt8, model8 = tiny("--amp", "auto", "--ngf", "8")
    assert amp_auto.choose_auto_amp(opt8, model8, model8.amp, cpu, timer=clock.timer) != expected
    assert len(json.loads(measured.read_text())) == 2



def test_a_decision_is_reused_only_under_the_same_openmp_waiting(measured, monkeypatch):
    """Sleeping threads (PASSIVE, chosen on a loaded machine) change which precision is faster,
    so the answer found with spinning threads must not be reused with sleeping ones."""
    clock = FakeClock({"none": 1.0, "bf16": 0.5})
    fake_probe(monkeypatch, clock)
    opt, model = tiny("--amp", "auto")
    cpu = torch.device("cpu")
    for key in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME"):
        monkeypatch.delenv(key, raising=False)
    assert amp_auto.choose_auto_amp(opt, model, model.amp, cpu, timer=clock.timer) == "bf16"
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    clock.costs = {"none": 0.6, "bf16": 1.0}
    assert amp_auto.choose_auto_amp(opt, model, model.amp, cpu, timer=clock.timer) == "none"
    keys = list(json.loads(measured.read_text()))
    assert len(keys) == 2, keys
    assert sorted(k.rsplit(",", 1)[1] for k in keys) == ["omp_wait=OMP_WAIT_POLICY=PASSIVE", "omp_wait=default"]


def test_a_decision_is_reused_only_under_the_same_load_at_start(measured, monkeypatch):
    """With sleeping threads either way, bf16 won on a quiet machine and lost on a loaded one
    (a stale quiet answer made a loaded run 1.4x slower than fp32): the load the process saw
    as it started (util/omp_env.py) is part of the key."""
    from util import omp_env
    clock = FakeClock({"none": 1.0, "bf16": 0.5})
    fake_probe(monkeypatch, clock)
    opt, model = tiny("--amp", "auto")
    cpu = torch.device("cpu")
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    monkeypatch.setattr(omp_env, "start_load", "quiet")
    assert amp_auto.choose_auto_amp(opt, model, model.amp, cpu, timer=clock.timer) == "bf16"
    monkeypatch.setattr(omp_env, "start_load", "busy")
    clock.costs = {"none": 0.6, "bf16": 1.0}
    assert amp_auto.choose_auto_amp(opt, model, model.amp, cpu, timer=clock.timer) == "none"
    monkeypatch.setattr(omp_env, "start_load", "quiet")   # back on a quiet machine: the first answer
    calls = len(clock.calls)
    assert amp_auto.choose_auto_amp(opt, model, model.amp, cpu, timer=clock.timer) == "bf16"
    assert len(clock.calls) == calls                        # reused, not measured again
    assert sorted(k.split("load=")[1].split(",")[0] for k in json.loads(measured.read_text())) == ["busy", "quiet"]


def test_a_damaged_cache_is_measured_again_and_rewritten(measured, monkeypatch):
    measured.write_text("{not json")
    clock = FakeClock({"none": 1.0, "bf16": 0.5})
    fake_probe(monkeypatch, clock)
    opt, model = tiny("--amp", "auto")
    assert amp_auto.choose_auto_amp(opt, model, model.amp, torch.device("cpu"), timer=clock.timer) == "bf16"
    assert list(json.loads(measured.read_text()).values())[0]["choice"] == "bf16"


def test_explicit_modes_and_pins_never_probe(measured, monkeypatch):
    clock = FakeClock({"none": 1.0, "bf16": 0.5})
    fake_probe(monkeypatch, clock)
    cpu = torch.device("cpu")
    for amp in ("none", "bf16", "fp16"):
        opt, model = tiny("--amp", amp)
        assert amp_auto.choose_auto_amp(opt, model, model.amp, cpu, timer=clock.timer) == amp
    opt, model = tiny("--amp", "auto")
    for pin, expected in (("none", "none"), ("bf16", "bf16"), ("native", "bf16")):
        monkeypatch.setenv("PIX2PIX_AMP_AUTO", pin)
        assert amp_auto.choose_auto_amp(opt, model, model.amp, cpu, timer=clock.timer) == expected
    assert clock.calls == [] and not measured.exists()
    # Without native bf16 there is nothing to measure: emulated bf16 is always slower.
    monkeypatch.setenv("PIX2PIX_AMP_AUTO", "measure")
    monkeypatch.setattr(amp_auto, "native_bf16", lambda device: False)
    assert amp_auto.choose_auto_amp(opt, model, model.amp, cpu, timer=clock.timer) == "none"
    assert clock.calls == []
    monkeypatch.setenv("PIX2PIX_AMP_AUTO", "fastest")
    with pytest.raises(SpeedError, match="PIX2PIX_AMP_AUTO='fastest' is not one of measure, native"):
        amp_auto.choose_auto_amp(opt, model, model.amp, cpu)


def batch_of(opt, seed: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    shape = (opt.batch_size, 3, opt.crop_size, opt.crop_size)
    return {"A": torch.rand(shape, generator=gen) * 2 - 1, "B": torch.rand(shape, generator=gen) * 2 - 1}


def train_two_steps(opt, model) -> list[torch.Tensor]:
    """Two steps in fp32 (the probe's choice aside): what the run does after the probe."""
    model.amp = "none"
    model.train()
    for seed in (1, 2):
        model.set_input(batch_of(opt, seed))
        model.train_step()
    return [torch.rand(4)]


def flat_state(model) -> dict[str, torch.Tensor]:
    """Every tensor of the model's state (weights, batch-norm statistics, Adam moments, the
    image pool and its generator), keyed by its path."""
    out: dict[str, torch.Tensor] = {}

    def walk(prefix: str, value) -> None:
        if torch.is_tensor(value):
            out[prefix] = value
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(f"{prefix}/{key}", item)
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                walk(f"{prefix}/{i}", item)
    walk("", model.state_dict())
    return out


def test_a_run_after_the_real_probe_equals_a_run_without_it(measured):
    """The oracle is the same run with no probe at all: after the probe (on copies, random
    streams restored) the weights, the optimizers, the image pool and the global random stream
    evolve exactly as if it had never run. Dropout, batch norm and a pool of 2 all draw random
    numbers, so a probe that leaked into any of them would show here."""
    extra = ("--amp", "auto", "--netG", "resnet_6blocks", "--crop_size", "32", "--load_size", "32",
             "--pool_size", "2", "--batch_size", "2")
    opt, probed = tiny(*extra)
    torch.manual_seed(5)
    choice = amp_auto.choose_auto_amp(opt, probed, probed.amp, torch.device("cpu"))
    assert choice in amp_auto.CANDIDATES
    entry = json.loads(measured.read_text())[amp_auto.config_key(opt, torch.device("cpu"), probed.nets)]
    assert entry["choice"] == choice and entry["median_s"]["none"] > 0 and entry["median_s"]["bf16"] > 0
    assert all(p.grad is None for net in probed.nets.values() for p in net.parameters())
    after_probe = train_two_steps(opt, probed)

    _, plain = tiny(*extra)
    torch.manual_seed(5)
    without_probe = train_two_steps(opt, plain)
    assert torch.equal(after_probe[0], without_probe[0])          # the global random stream
    probed_state, plain_state = flat_state(probed), flat_state(plain)
    assert probed_state.keys() == plain_state.keys() and any("image_pool" in k for k in plain_state)
    for key, value in plain_state.items():
        assert torch.equal(probed_state[key], value), key


def test_the_probe_times_the_models_own_step_on_copies_in_each_precision(measured, monkeypatch):
    """One training step in the project: the probe runs the model's train_step, on twins, each
    in its candidate precision, interleaved as measure() orders them."""
    opt, model = tiny("--amp", "auto", "--crop_size", "32", "--load_size", "32", "--netG", "resnet_6blocks")
    calls: list[tuple[bool, str]] = []
    real_step = type(model).train_step

    def recording_step(self, *args, **kwargs):
        calls.append((self is model, self.amp))
        return real_step(self, *args, **kwargs)
    monkeypatch.setattr(type(model), "train_step", recording_step)
    amp_auto.choose_auto_amp(opt, model, model.amp, torch.device("cpu"))
    rounds = [("none", "bf16"), ("bf16", "none")] * amp_auto.ROUNDS
    assert calls == [(False, amp) for amp in ("none", "bf16", *sum(rounds[:amp_auto.ROUNDS], ()))]
