"""Speed options (issue 8): each one parses, runs, and learns the same as plain fp32.

Tiny networks (unet_128 at ngf 8, 128 px) and a few steps, on CPU. The 200-step facades
comparison lives in benchmarks/same_learning.py; speed itself is measured in benchmarks/.
"""
from __future__ import annotations

import logging

import pytest
import torch

from models import create_model
from options.parse import parse_options
from engine.distributed import single_process_runtime, unwrap
from engine.speed import AMP_MODES, CompileFallback, BackendSettings, apply_backend_settings, make_adam

TINY = ["--dataroot", "unused", "--gpu_ids", "-1", "--netG", "unet_128", "--ngf", "8", "--ndf", "8",
        "--crop_size", "128", "--load_size", "128", "--display_id", "0", "--amp", "none"]


def tiny_model(*extra: str):
    opt = parse_options([*TINY, *extra], is_train=True)
    torch.manual_seed(0)
    return create_model(opt, single_process_runtime([]))


def batches(n: int) -> list[dict[str, torch.Tensor]]:
    gen = torch.Generator().manual_seed(1)
    # B a smooth function of A, so L1 has something to learn.
    out = []
    for _ in range(n):
        a = torch.rand(1, 3, 128, 128, generator=gen) * 2 - 1
        out.append({"A": a, "B": torch.tanh(2 * a.flip(1))})
    return out


def train(model, data) -> list[dict[str, float]]:
    torch.manual_seed(2)   # the same dropout masks in every run
    curve = []
    for batch in data:
        model.set_input(batch)
        curve.append({k: float(v) for k, v in model.train_step().items()})
    return curve


@pytest.fixture(scope="module")
def fp32_run():
    model = tiny_model()
    return train(model, batches(3))


# Loss curves, not weights: Adam's first steps move each weight by about lr * sign(grad), so
# a rounding difference flips the sign of near-zero gradients and the weights differ by a
# large fraction of their change even for channels_last (measured: 1.3x after 3 steps) while
# the losses agree to 1e-4.
@pytest.mark.parametrize("option,loss_tol", [
    (("--amp", "bf16"), 0.03),
    (("--amp", "fp16"), 0.01),
    (("--channels_last",), 1e-3),
])
def test_option_learns_the_same_as_fp32(fp32_run, option, loss_tol):
    reference_curve = fp32_run
    model = tiny_model(*option)
    curve = train(model, batches(3))
    for step, (got, want) in enumerate(zip(curve, reference_curve)):
        for name in want:
            assert got[name] == pytest.approx(want[name], rel=loss_tol, abs=1e-3), (option, step, name)


def test_losses_come_back_fp32_and_detached_under_bf16():
    model = tiny_model("--amp", "bf16")
    model.set_input(batches(1)[0])
    losses = model.train_step()
    assert all(v.dtype == torch.float32 and not v.requires_grad for v in losses.values())
    assert model.fake_B.dtype == torch.bfloat16   # autocast really ran


def test_fp16_overflow_skips_only_that_networks_step():
    model = tiny_model("--amp", "fp16")
    assert set(model.scalers) == {"G", "D"}
    first, second = batches(2)
    model.set_input(first)
    model.train_step()   # the scalers initialize lazily, at their first step
    model.scalers["D"].update(new_scale=float("inf"))   # D's scaled gradients become inf/nan
    g_scale = float(model.scalers["G"].get_scale())
    d_before = [p.detach().clone() for p in model.net_D.parameters()]
    g_before = [p.detach().clone() for p in model.net_G.parameters()]
    model.set_input(second)
    model.train_step()
    assert all(torch.equal(a, b) for a, b in zip(d_before, model.net_D.parameters()))
    assert not any(torch.equal(a, b) for a, b in zip(g_before, model.net_G.parameters()) if a.dim() > 1)
    assert all(torch.isfinite(p).all() for p in model.net_D.parameters())
    assert float(model.scalers["G"].get_scale()) == g_scale   # G's scale is not touched by D's overflow


def test_fp16_scaler_state_is_saved_and_restored():
    model = tiny_model("--amp", "fp16")
    model.set_input(batches(1)[0])
    model.train_step()
    model.scalers["G"].update(new_scale=1024.0)
    state = model.state_dict()
    resumed = tiny_model("--amp", "fp16")
    resumed.load_state_dict(state)
    assert float(resumed.scalers["G"].get_scale()) == 1024.0
    # A checkpoint from an fp32 run (no scalers) still loads into an fp16 run.
    tiny_model("--amp", "fp16").load_state_dict(tiny_model().state_dict())


def test_compile_failure_falls_back_to_eager_with_one_warning(monkeypatch, caplog):
    calls = []

    def broken_compile(module, **kwargs):
        def run(*args, **kw):
            calls.append(1)
            raise RuntimeError("backend exploded\nlong traceback line")
        return run

    monkeypatch.setattr(torch, "compile", broken_compile)
    eager = tiny_model()
    model = tiny_model("--compile")
    assert isinstance(model.net_G, CompileFallback) and isinstance(model.net_D, CompileFallback)
    # Checkpoints hold the plain networks' keys, loadable without --compile.
    assert unwrap(model.net_G).state_dict().keys() == unwrap(eager.net_G).state_dict().keys()
    with caplog.at_level(logging.WARNING, logger="engine.speed"):
        want = train(eager, batches(2))
        got = train(model, batches(2))
    warnings = [r.getMessage() for r in caplog.records if "could not compile" in r.getMessage()]
    assert len(warnings) == 2 and "backend exploded" in warnings[0] and "\n" not in warnings[0]
    assert len(calls) == 2   # each network tried once, then eager for good
    assert all(g == pytest.approx(w) for g, w in zip(got, want))


def test_speed_options_parse_for_train_and_test_and_reject_bad_values(capsys):
    opt = parse_options([*TINY, "--amp", "bf16", "--compile", "--channels_last", "--torch_threads", "1"],
                        is_train=True)
    assert (opt.amp, opt.compile, opt.channels_last, opt.torch_threads) == ("bf16", True, True, 1)
    assert parse_options(["--dataroot", "x", "--gpu_ids", "-1", "--amp", "fp16"], is_train=False).amp == "fp16"
    with pytest.raises(SystemExit) as exit_info:
        parse_options([*TINY, "--amp", "fp8"], is_train=True)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--amp" in err and "bf16" in err and len(err.strip().splitlines()) == 1
    assert list(AMP_MODES.names()) == ["auto", "none", "bf16", "fp16"]


def test_backend_settings_and_adam_on_cpu():
    before = torch.get_num_threads()
    try:
        state = apply_backend_settings(BackendSettings(torch_threads=1), torch.device("cpu"))
        assert state["torch_threads"] == 1 == torch.get_num_threads()
        assert state["tf32"] is False   # a CPU has no TF32
    finally:
        torch.set_num_threads(before)
    # Fused Adam on CPU: the same update as the per-tensor loop (to rounding), much faster.
    torch.manual_seed(0)
    nets = [torch.nn.Linear(8, 8) for _ in range(2)]
    nets[1].load_state_dict(nets[0].state_dict())
    fused = make_adam(nets[0].parameters(), 1e-3, (0.5, 0.999), torch.device("cpu"))
    plain = torch.optim.Adam(nets[1].parameters(), lr=1e-3, betas=(0.5, 0.999), foreach=False)
    assert fused.defaults["fused"]
    for _ in range(3):
        for net, opt in zip(nets, (fused, plain)):
            opt.zero_grad()
            net(torch.ones(2, 8)).square().sum().backward()
            opt.step()
    for a, b in zip(nets[0].parameters(), nets[1].parameters()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_amp_auto_picks_bf16_only_where_the_hardware_has_it(monkeypatch):
    import engine.speed as speed

    cpu = torch.device("cpu")
    for native, expected in ((True, "bf16"), (False, "none")):
        monkeypatch.setattr(speed, "native_bf16", lambda device, native=native: native)
        assert speed.resolve_amp("auto", cpu) == expected
        assert tiny_model("--amp", "auto").amp == expected
    assert speed.resolve_amp("fp16", cpu) == "fp16"
    # Training defaults to the fastest measured setting; inference stays fp32 by default.
    without_amp = [d for d in TINY if d not in ("--amp", "none")]
    assert parse_options(without_amp, is_train=True).amp == "auto"
    test_argv = [d for d in without_amp if d not in ("--display_id", "0")]
    assert parse_options(test_argv, is_train=False).amp == "none"
