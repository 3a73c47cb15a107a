"""The record of how a run trained (engine/checkpoint/format.py ``Execution``) and the rules that
settle it (engine/execution.py): what a fresh run, a resume, a typed --amp and an older file
give, how the waiting is named, and how train_opt.txt shows the resolved values."""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
import torch

from engine.checkpoint import FULL_FORMAT, GENERATOR_FORMAT, UNRECORDED, Execution, find_generator
from engine.distributed import single_process_runtime
from engine.execution import settle_execution
from models import create_model
from models.networks import architecture_from_options
from options.parse import format_options, parse_options
from util.omp_env import wait_policy

FIXTURES = Path(__file__).parent / "fixtures" / "checkpoints_v1"
TINY = ["--dataroot", "unused", "--gpu_ids", "-1", "--netG", "resnet_6blocks", "--ngf", "4", "--ndf", "4",
        "--crop_size", "32", "--load_size", "32", "--display_id", "0"]
CPU = torch.device("cpu")
BF16_AUTO = Execution("bf16", "--amp auto", "PASSIVE")


def tiny(*extra: str):
    opt = parse_options([*TINY, *extra], is_train=True)
    return opt, create_model(opt, single_process_runtime([]))


@pytest.mark.parametrize("env, expected", [
    ({}, "default"),
    ({"OMP_WAIT_POLICY": "passive"}, "PASSIVE"),
    ({"OMP_WAIT_POLICY": "ACTIVE", "GOMP_SPINCOUNT": "0"}, "ACTIVE GOMP_SPINCOUNT=0"),
    ({"KMP_BLOCKTIME": "0", "PATH": "/bin"}, "KMP_BLOCKTIME=0"),
])
def test_the_waiting_is_named_by_the_variables_that_set_it(env: dict, expected: str) -> None:
    assert wait_policy(env) == expected


def test_the_record_describes_itself_in_one_line() -> None:
    assert BF16_AUTO.describe() == "trained in bf16 (decided by --amp auto), OpenMP wait PASSIVE"
    assert Execution.from_dict(BF16_AUTO.as_dict()) == BF16_AUTO
    old_auto = Execution.from_options({"amp": "auto"})
    assert old_auto.amp == UNRECORDED and old_auto.omp_wait == UNRECORDED
    assert old_auto.describe().startswith("precision not recorded (--amp auto")
    assert Execution.from_options({"amp": "bf16"}) == Execution("bf16", "--amp bf16", UNRECORDED)
    assert Execution.from_options({}) == Execution("none", "--amp none", UNRECORDED)   # before --amp existed


def test_a_version_1_file_gets_the_execution_its_options_say() -> None:
    # The fixture was trained with --amp none typed: certain; its waiting was never written.
    for use_ema in (True, False):
        saved = find_generator(FIXTURES / "v1", "latest", architecture_from_options, use_ema)
        assert saved.execution == Execution("none", "--amp none", UNRECORDED)


def test_a_version_2_file_of_an_auto_run_reads_as_not_recorded(tmp_path: Path) -> None:
    """Version 2 had the specs but no record: only the record is filled in."""
    shutil.copytree(FIXTURES / "v1", tmp_path / "v2")
    for name, kind in (("latest.pt", "full"), ("latest_net_G.pt", "G")):
        ckpt = torch.load(tmp_path / "v2" / name, weights_only=True)
        spec = find_generator(FIXTURES / "v1", "latest", architecture_from_options, False).spec
        ckpt.update(format=f"pix2pix-app/{kind}/2", options={**ckpt["options"], "amp": "auto"})
        ckpt.update({"specs": {"G": spec, "D": {}}} if kind == "full" else {"spec": spec})
        torch.save(ckpt, tmp_path / "v2" / name)
    for use_ema, name in ((False, "latest_net_G.pt"), (True, "latest.pt")):   # the EMA is in the full file
        saved = find_generator(tmp_path / "v2", "latest", lambda options: pytest.fail("v2 has specs"), use_ema)
        assert saved.path.name == name and saved.spec["name"] == "unet_128" and saved.execution.amp == UNRECORDED
    assert FULL_FORMAT.endswith("/4") and GENERATOR_FORMAT.endswith("/4")


def test_a_fresh_run_records_what_it_decided(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIX2PIX_AMP_AUTO", "none")
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    opt, model = tiny()
    assert settle_execution(opt, model, CPU, None) == Execution("none", "--amp auto, pinned by PIX2PIX_AMP_AUTO=none",
                                                                "PASSIVE")
    opt, model = tiny("--amp", "bf16")
    assert settle_execution(opt, model, CPU, None) == Execution("bf16", "--amp bf16", "PASSIVE")
    assert model.amp == "bf16"


@pytest.mark.parametrize("typed", [[], ["--amp", "auto"], ["--amp", "bf16"]])
def test_a_resume_keeps_the_recorded_precision_quietly(typed: list[str], monkeypatch: pytest.MonkeyPatch,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    """Untyped, ``auto`` typed (the same command again), or the very precision recorded."""
    monkeypatch.setenv("PIX2PIX_AMP_AUTO", "none")   # a fresh decision would be fp32
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    opt, model = tiny(*typed)
    with caplog.at_level(logging.INFO):
        settled = settle_execution(opt, model, CPU, BF16_AUTO)
    assert settled.amp == model.amp == "bf16" and settled.omp_wait == "default"
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_typed_precision_overrides_the_record_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    opt, model = tiny("--amp", "fp16")
    settled = settle_execution(opt, model, CPU, BF16_AUTO)
    assert settled.amp == model.amp == "fp16" and settled.amp_source == "--amp fp16"
    assert set(model.scalers) == {"G", "D"}   # fp16 trains with loss scaling: made for the new precision
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        "--amp fp16 typed on a resume of a run trained in bf16: it overrides the recorded precision, and the run "
        "is no longer bit-identical to an uninterrupted one"]


def test_a_file_without_a_recorded_choice_is_decided_again_with_a_warning(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("PIX2PIX_AMP_AUTO", "none")
    opt, model = tiny()
    settled = settle_execution(opt, model, CPU, Execution.from_options({"amp": "auto"}))
    assert settled.amp == "none"
    assert any("does not record the precision" in r.getMessage() for r in caplog.records
               if r.levelno == logging.WARNING)


def test_train_opt_shows_the_resolved_value_beside_the_requested_one() -> None:
    opt, _ = tiny()
    text = format_options(opt, {"amp": "bf16 (decided by --amp auto)", "omp_wait": "PASSIVE (auto)"})
    assert "                      amp: auto -> bf16 (decided by --amp auto)\n" in text
    assert "                 omp_wait: PASSIVE (auto)\n" in text
    assert format_options(opt).count("->") == 0


def test_a_resume_of_an_fp16_run_gets_its_loss_scalers_back(tmp_path: Path) -> None:
    """The recorded precision is taken before the checkpoint loads, so the scalers it needs
    exist to receive their saved state: the resumed run's scalers go on as the uninterrupted
    run's do (their growth counters would restart otherwise)."""
    import train as train_script
    from tests.test_execution_resume import argv
    from tests.test_ddp import write_pairs
    pairs = write_pairs(tmp_path / "pairs", n=4, side=32)
    assert train_script.main([*argv(pairs, tmp_path, "full", "--max_steps", "3"), "--amp", "fp16"]) == 0
    assert train_script.main([*argv(pairs, tmp_path, "cut", "--max_steps", "1"), "--amp", "fp16"]) == 0
    assert train_script.main(argv(pairs, tmp_path, "cut", "--max_steps", "3", "--continue_train")) == 0
    full, cut = (torch.load(tmp_path / name / "latest.pt", weights_only=True) for name in ("full", "cut"))
    assert cut["execution"]["amp"] == "fp16" and set(cut["scalers"]) == {"G", "D"}
    torch.testing.assert_close(cut["scalers"], full["scalers"], rtol=0, atol=0)
    torch.testing.assert_close(cut["nets"], full["nets"], rtol=0, atol=0)


def test_the_pin_is_read_once_and_checked_before_anything_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    from engine import amp_auto
    from engine.speed import SpeedError

    reads = []
    read = amp_auto.amp_pin
    monkeypatch.setattr(amp_auto, "amp_pin", lambda *a: reads.append(1) or read(*a))
    monkeypatch.setenv("PIX2PIX_AMP_AUTO", "None")
    opt, model = tiny()
    assert settle_execution(opt, model, CPU, None).amp_source == "--amp auto, pinned by PIX2PIX_AMP_AUTO=none"
    assert reads == [1]
    monkeypatch.setenv("PIX2PIX_AMP_AUTO", "fastest")
    opt, model = tiny()
    before = model.amp
    with pytest.raises(SpeedError, match=r"^PIX2PIX_AMP_AUTO='fastest' is not one of measure, native, none, bf16$"):
        settle_execution(opt, model, CPU, None)
    assert model.amp == before


def test_train_opt_shows_the_omp_policy_in_force(monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.execution import resolved_options

    monkeypatch.setenv("PIX2PIX_OMP_POLICY", "Passive")
    assert resolved_options(Execution("none", "--amp none", "PASSIVE"))["omp_wait"] == \
        "PASSIVE (PIX2PIX_OMP_POLICY=passive)"
    monkeypatch.delenv("PIX2PIX_OMP_POLICY")
    assert resolved_options(Execution("none", "--amp none", "default"))["omp_wait"] == \
        "default (PIX2PIX_OMP_POLICY=auto)"
