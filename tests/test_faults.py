"""Training that survives stops, kills and faults (issue 12), in one process.

Tiny networks on 32 px pairs; 8 images, batch 2: 4 steps an epoch, 2 epochs. Every resumed
run is compared, tensor for tensor, with a run that was never interrupted (the oracle), and
every failure with the files it must leave untouched.
"""
from __future__ import annotations

import errno
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest
import torch

import engine.checkpoint.files as checkpoint_module
import engine.checkpoint.format as checkpoint_format
import train as train_script
import training.loop as training_loop
from tests.test_ddp import REPO, train_args, write_pairs

STEPS = 8  # 2 epochs of 4 steps


@pytest.fixture(scope="module")
def pairs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_pairs(tmp_path_factory.mktemp("fault_pairs"))


def args(pairs: Path, ckpt: Path, name: str, *extra: str) -> list[str]:
    # Dropout stays on: its random stream must resume exactly too. 'latest' every step.
    return train_args(pairs, ckpt, name, "--batch_size", "2", "--save_latest_freq", "2", "--save_epoch_freq", "1",
                      *extra)


def weights(path: Path) -> dict:
    saved = torch.load(path, weights_only=True)
    return {"nets": saved["nets"], "optimizers": saved["optimizers"], "state": saved["state"]}


def assert_same_training(a: dict, b: dict) -> None:
    assert a["state"] == b["state"]
    for net in a["nets"]:
        for key, value in a["nets"][net].items():
            assert torch.equal(value, b["nets"][net][key]), f"{net}.{key} differs"
    torch.testing.assert_close(a["optimizers"], b["optimizers"], rtol=0, atol=0)


@pytest.fixture(scope="module")
def uninterrupted(pairs: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    ckpt = tmp_path_factory.mktemp("oracle")
    assert train_script.main(args(pairs, ckpt, "full")) == 0
    return weights(ckpt / "full" / "latest.pt")


def signal_at_step(monkeypatch: pytest.MonkeyPatch, step: int, signum: int) -> None:
    """Send ``signum`` to this process right after optimization step ``step``, as a scheduler would."""
    real = training_loop.report_and_save

    def report_then_signal(run, model, state, *rest) -> None:
        real(run, model, state, *rest)
        if state.step == step:
            os.kill(os.getpid(), signum)

    monkeypatch.setattr(training_loop, "report_and_save", report_then_signal)


@pytest.mark.parametrize("signum, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130), (signal.SIGUSR1, 138)])
def test_stop_signal_saves_latest_and_the_resumed_run_is_bit_identical(
        pairs: Path, tmp_path: Path, uninterrupted: dict, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], signum: int, status: int) -> None:
    # Stop between save points ('latest' every 2 steps is the stop's own save here).
    argv = args(pairs, tmp_path, "cut", "--save_latest_freq", "1000")
    with monkeypatch.context() as patch:
        signal_at_step(patch, 3, signum)
        assert train_script.main(argv) == status
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"stopped by {signal.Signals(signum).name} after step 3" in err[0]
    assert "--continue_train" in err[0] and "Traceback" not in err[0]
    assert torch.load(tmp_path / "cut" / "latest.pt", weights_only=True)["state"]["step"] == 3
    # The handlers are the previous ones again once training has returned.
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    assert train_script.main([*argv, "--continue_train"]) == 0
    assert_same_training(weights(tmp_path / "cut" / "latest.pt"), uninterrupted)


def test_second_signal_during_the_save_leaves_the_previous_checkpoint_whole(
        pairs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    argv = args(pairs, tmp_path, "twice", "--save_latest_freq", "4")  # 'latest' at steps 2, 4, ...
    signal_at_step(monkeypatch, 3, signal.SIGTERM)
    # The fault hook inside save_atomic: the data sits in the temporary file, not yet renamed.
    monkeypatch.setattr(checkpoint_module, "_pause_for_fault_tests", lambda: os.kill(os.getpid(), signal.SIGTERM))
    before = (tmp_path / "twice" / "latest.pt")
    assert train_script.main(argv) == 143
    err = capsys.readouterr().err
    assert "stopped at once by a second SIGTERM" in err and "Traceback" not in err
    assert torch.load(before, weights_only=True)["state"]["step"] == 2  # the save at step 2, whole
    assert not list((tmp_path / "twice").glob(".*tmp"))


def test_continue_train_auto_starts_fresh_then_resumes(pairs: Path, tmp_path: Path, uninterrupted: dict,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    argv = [*args(pairs, tmp_path, "auto"), "--continue_train", "auto"]
    assert train_script.main([*argv, "--max_steps", "5"]) == 0  # empty folder: a fresh start
    assert "resumed" not in capsys.readouterr().out
    assert train_script.main(argv) == 0  # the same command again: resumes at step 5
    assert "resumed from latest at epoch 2, step 5" in capsys.readouterr().out
    assert_same_training(weights(tmp_path / "auto" / "latest.pt"), uninterrupted)


def corrupt_latest_after_epoch_1(pairs: Path, ckpt: Path, name: str) -> Path:
    assert train_script.main([*args(pairs, ckpt, name), "--max_steps", "5"]) == 0
    latest = ckpt / name / "latest.pt"
    latest.write_bytes(latest.read_bytes()[:1000])  # truncated, as by a full disk or a bad copy
    os.utime(ckpt / name / "1.pt")  # the fallback is chosen by age: leave no doubt which is newest
    return latest


def test_corrupt_latest_names_the_newest_loadable_checkpoint(pairs: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    latest = corrupt_latest_after_epoch_1(pairs, tmp_path, "bad")
    capsys.readouterr()
    kept = latest.read_bytes()
    assert train_script.main([*args(pairs, tmp_path, "bad"), "--continue_train"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(latest) in err[0] and "not a readable checkpoint" in err[0]
    assert "the newest loadable checkpoint is 1.pt: resume with --continue_train --epoch 1" in err[0]
    assert latest.read_bytes() == kept  # nothing overwritten


def test_auto_falls_back_to_the_newest_loadable_checkpoint(pairs: Path, tmp_path: Path, uninterrupted: dict,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    corrupt_latest_after_epoch_1(pairs, tmp_path, "fallback")
    assert train_script.main([*args(pairs, tmp_path, "fallback"), "--continue_train", "auto"]) == 0
    # The warning says why (torch's own words for the truncated file follow "readable checkpoint").
    assert any(re.fullmatch(r".*latest\.pt does not load \(not a readable checkpoint \(.+\)\); resuming from 1\.pt, "
                            r"the newest checkpoint that does", r.getMessage())
               for r in caplog.records if r.levelname == "WARNING"), [r.getMessage() for r in caplog.records]
    # 1.pt holds the state at the end of epoch 1: training from there ends where the oracle did.
    assert_same_training(weights(tmp_path / "fallback" / "latest.pt"), uninterrupted)


def poison_generator_at_step(monkeypatch: pytest.MonkeyPatch, step: int) -> None:
    """A real divergence: G's weights turn NaN before step ``step``, so its loss is NaN."""
    real = training_loop.report_and_save

    def report(run, model, state, *rest) -> None:
        if state.step == step - 1:
            with torch.no_grad():
                next(iter(model.nets["G"].parameters())).fill_(float("nan"))
        real(run, model, state, *rest)

    monkeypatch.setattr(training_loop, "report_and_save", report)


def test_nan_loss_stops_without_overwriting_the_last_good_checkpoint(
        pairs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    argv = args(pairs, tmp_path, "nan", "--print_freq", "1000")  # the save is the check that catches it
    poison_generator_at_step(monkeypatch, 4)
    assert train_script.main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "training diverged at step" in err[0] and "nan" in err[0]
    saved = torch.load(tmp_path / "nan" / "latest.pt", weights_only=True)
    assert saved["state"]["step"] == 2  # step 3's weights were already NaN: the save refused it
    assert all(torch.isfinite(v).all() for net in saved["nets"].values() for v in net.values() if v.is_floating_point())


def mount_tmpfs(target: Path, size_bytes: int) -> Callable[[], None] | None:
    target.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_bytes}", "tmpfs", str(target)],
                          capture_output=True)
    if done.returncode != 0:
        return None
    return lambda: subprocess.run(["umount", "-l", str(target)], check=False)


@pytest.mark.parametrize("spare_quarters", [1, 3])
def test_full_disk_during_a_save_leaves_the_previous_checkpoint_intact(
        pairs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        spare_quarters: int) -> None:
    # Size a small filesystem that holds one save (latest.pt + latest_net_G.pt) but not the
    # temporary copy of the next one beside it. With a quarter of a save to spare, the disk
    # fills inside torch.save's zip writer (which rewords the error as a RuntimeError, so
    # save_atomic keeps the OSError); with three quarters, later.
    probe = tmp_path / "probe"
    assert train_script.main([*args(pairs, probe, "p"), "--max_steps", "1"]) == 0
    full, gen = (probe / "p" / "latest.pt").stat().st_size, (probe / "p" / "latest_net_G.pt").stat().st_size
    disk = tmp_path / "disk"
    unmount = mount_tmpfs(disk, full + gen + spare_quarters * full // 4 + 64 * 1024)
    if unmount is None:  # no mount allowed here: the same error, injected at the write
        real_save = torch.save
        calls = {"n": 0}

        def save_then_fill_disk(obj, f, *a, **k):
            calls["n"] += 1
            if calls["n"] > 2:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real_save(obj, f, *a, **k)
        monkeypatch.setattr(checkpoint_module.torch, "save", save_then_fill_disk)
    try:
        capsys.readouterr()
        assert train_script.main(args(pairs, disk, "full_disk")) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "latest.pt: could not be written (No space left on device)" in err[0], err
        folder = disk / "full_disk"
        assert torch.load(folder / "latest.pt", weights_only=True)["state"]["step"] == 1
        assert torch.load(folder / "latest_net_G.pt", weights_only=True)["format"] == checkpoint_format.GENERATOR_FORMAT
        assert not list(folder.glob(".*tmp"))
    finally:
        if unmount is not None:
            unmount()


def wait_for(condition: Callable[[], object], process: subprocess.Popen, timeout_s: float = 240) -> object:
    import time
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        assert process.poll() is None, f"train.py ended early ({process.returncode})"
        time.sleep(0.01)
    raise AssertionError("timed out")


def test_sigkill_inside_a_save_loses_nothing_and_the_next_run_cleans_up(pairs: Path, tmp_path: Path,
                                                                        uninterrupted: dict) -> None:
    """SIGKILL inside a checkpoint write (the fault hook pauses there): the old 'latest' stays
    whole, and the rerun (--continue_train auto) removes the temporary file and ends exactly
    like an uninterrupted run."""
    argv = [*args(pairs, tmp_path, "killed", "--save_latest_freq", "6"), "--continue_train", "auto"]
    # The child computes with as many threads as this process: the rerun happens in here, and
    # a conv's gradient sums in another order with another thread count.
    env = {**os.environ, checkpoint_module.PAUSE_IN_SAVE_ENV: "1", "OMP_NUM_THREADS": str(torch.get_num_threads())}
    folder = tmp_path / "killed"
    run = subprocess.Popen([sys.executable, str(REPO / "train.py"), *argv], env=env, cwd=tmp_path,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: (folder / "latest.pt").exists(), run)  # the save at step 3 is complete
        wait_for(lambda: list(folder.glob(".latest.pt.*.tmp")), run)  # inside the save of step 6
    finally:
        run.kill()
        run.wait(30)
    assert list(folder.glob(".latest.pt.*.tmp"))
    assert torch.load(folder / "latest.pt", weights_only=True)["state"]["step"] == 3
    assert train_script.main(argv) == 0
    assert not list(folder.glob(".*tmp"))
    assert_same_training(weights(folder / "latest.pt"), uninterrupted)


def test_visdom_killed_then_restarted_costs_one_warning_and_the_display_comes_back(
        pairs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    import json
    import warnings as warnings_module

    import visdom

    import reporting.sinks.visdom as visdom_sink
    oracle = uninterrupted_weights(pairs, tmp_path)  # before the hook below is in place
    monkeypatch.setattr(visdom_sink, "RECONNECT_EVERY_S", 0.0)  # look again at every point
    from support.visdom_server import VisdomServer
    server = VisdomServer(tmp_path / "visdom")
    server.start()
    real = training_loop.report_and_save

    def report_then_break_the_server(run, model, state, *rest) -> None:
        real(run, model, state, *rest)
        if state.step == 2:
            server.kill()
        elif state.step == 4:
            server.start()

    monkeypatch.setattr(training_loop, "report_and_save", report_then_break_the_server)
    try:
        argv = args(pairs, tmp_path, "shown", "--display_id", "1", "--display_port", str(server.port),
                    "--display_server", "http://127.0.0.1", "--display_env", "faults", "--display_freq", "2")
        assert train_script.main(argv) == 0
        warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING" and "visdom" in r.getMessage()]
        assert len(warnings) == 1 and "stopped answering" in warnings[0], warnings
        assert any("live display is back" in r.getMessage() for r in caplog.records)
        # The restarted server (an empty one) shows the whole run: the curves are drawn again
        # from the loss log when the display comes back, then go on point by point.
        with warnings_module.catch_warnings():
            warnings_module.simplefilter("ignore", DeprecationWarning)  # visdom's own logger.warn call
            client = visdom.Visdom(server="http://127.0.0.1", port=server.port, use_incoming_socket=False)
        losses = json.loads(client.get_window_data("shown_1_losses", env="faults"))
        logged = [r["epoch_frac"] for r in map(json.loads, (tmp_path / "shown" / "loss_log.jsonl").read_text().splitlines())
                  if "losses" in r]
        assert len(logged) == STEPS
        assert {trace["name"]: trace["x"] for trace in losses["content"]["data"]}["G_L1"] == logged
    finally:
        server.kill()
    assert_same_training(weights(tmp_path / "shown" / "latest.pt"), oracle)


def uninterrupted_weights(pairs: Path, tmp_path: Path) -> dict:
    assert train_script.main(args(pairs, tmp_path / "plain", "plain")) == 0
    return weights(tmp_path / "plain" / "plain" / "latest.pt")


class _Killed(BaseException):
    """Stands for SIGKILL: nothing of the run's own handling runs after it."""


def test_a_kill_between_an_epochs_two_saves_keeps_the_epoch_checkpoint_coming(
        pairs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, uninterrupted: dict) -> None:
    # Epoch 1 ends at step 4 with two saves, '1' and 'latest'; the process dies between them.
    # The rerun resumes from what is on disk and must still leave '1' as an uninterrupted run does.
    from engine.saver import Saver

    real_save = Saver.save
    at_epoch_end: list[str] = []

    def save_then_die(self, model, state, label, *rest, **kw) -> None:
        if state.epoch == 2 and state.epoch_samples == 0:   # the saves of epoch 1's end
            at_epoch_end.append(label)
            if len(at_epoch_end) == 2:
                raise _Killed
        real_save(self, model, state, label, *rest, **kw)

    monkeypatch.setattr(Saver, "save", save_then_die)
    ckpt = tmp_path / "ck"
    with pytest.raises(_Killed):
        train_script.main(args(pairs, ckpt, "killed", "--continue_train", "auto"))
    monkeypatch.setattr(Saver, "save", real_save)
    assert sorted(at_epoch_end) == ["1", "latest"]
    assert train_script.main(args(pairs, ckpt, "killed", "--continue_train", "auto")) == 0
    folder = ckpt / "killed"
    assert torch.load(folder / "1.pt", weights_only=True)["state"]["epoch"] == 2   # the state after epoch 1
    assert_same_training(weights(folder / "latest.pt"), uninterrupted)
