"""--early_stop N: the run ends, as a finished one does, once N validations in a row have not
beaten --best_metric's best (a tie is no improvement); the count is saved with the counters, so
a killed and resumed run stops at the step an uninterrupted one does, and a resume of a run that
stopped early trains nothing unless --early_stop is raised or switched off.

The oracle is a hand count: --lr 1e-30 leaves the weights as they were initialised (to the 8-bit
images validation scores), so the first validation is the best and every later one ties with it.
Two training pairs at batch 1 are 2 steps an epoch."""
from __future__ import annotations

import contextlib
import io
import shutil
from pathlib import Path

import pytest
import torch

import train as train_driver
from engine.checkpoint import load_file
from reporting.loss_log import read_loss_log
from reporting.reporter import Reporter
from tests.pipeline_helpers import make_aligned_dataset, tiny_args

# The weights stay put: every validation scores what the first did. No images but the last step's.
FROZEN = ["--lr", "1e-30", "--best_metric", "l1", "--n_epochs", "5", "--n_epochs_decay", "0", "--print_freq", "1",
          "--save_epoch_freq", "1", "--display_freq", "1000", "--update_html_freq", "1000"]
# Every step validates: step 1 is the best, steps 2 and 3 tie with it, so N = 2 ends after step 1 + 2 = 3.
EVERY_STEP = FROZEN + ["--val_freq", "1", "--early_stop", "2"]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_aligned_dataset(tmp_path_factory.mktemp("early") / "data", {"train": 2, "val": 2})


def spy_images(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, bool, bool]]:
    shown: list[tuple[int, bool, bool]] = []
    real = Reporter.report_images

    def spy(self, visuals, epoch, step, snapshot, live=True):
        shown.append((step, live, snapshot))
        return real(self, visuals, epoch, step, snapshot, live)
    monkeypatch.setattr(Reporter, "report_images", spy)
    return shown


@pytest.fixture(scope="module")
def stopped(data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list, str]:
    """The uninterrupted run: (its checkpoints_dir, the images reported, its log)."""
    ck = tmp_path_factory.mktemp("stopped") / "ck"
    with pytest.MonkeyPatch.context() as mp:
        shown = spy_images(mp)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):   # the log goes to whatever stdout is
            assert train_driver.main(tiny_args(data, ck) + EVERY_STEP) == 0
    return ck, shown, out.getvalue()


def state(run: Path, label: str = "latest") -> dict:
    return load_file(run / f"{label}.pt")["state"]


def steps(run: Path, split: str | None) -> list[int]:
    records = read_loss_log(run / "loss_log.jsonl")
    return [r["step"] for r in records if ("metrics" in r) == (split == "val")]


def test_the_run_ends_after_n_validations_without_a_better_one(stopped) -> None:
    ck, shown, log = stopped
    run = ck / "tiny"
    assert state(run) == {"epoch": 2, "epoch_samples": 1, "step": 3, "samples": 3, "validations_since_best": 2}
    assert load_file(run / "best.pt")["best"]["step"] == 1   # the ties did not replace it
    assert steps(run, "val") == [1, 2, 3] and steps(run, None) == [1, 2, 3]
    assert (run / "1.pt").is_file() and not (run / "2.pt").exists()   # epoch 2 never ended
    assert shown == [(3, True, True)]   # the last step's images, once, to every display
    assert "early stop: L1 has not improved on its best" in log
    assert "(step 1) in 2 validations (--early_stop 2); the run ends after step 3" in log
    assert "early_stop: 2   (typed)" in (run / "train_opt.txt").read_text()


def test_an_early_stop_by_the_epochs_validation_ends_that_epoch(data: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Validating at each epoch's end (steps 2, 4, 6), N = 2 ends at step 6 with epoch 3 ended:
    its checkpoint saved, 'latest' the state after it, the step's images shown once."""
    shown = spy_images(monkeypatch)
    args = tiny_args(data, tmp_path) + FROZEN + ["--val_epoch_freq", "1", "--early_stop", "2"]
    assert train_driver.main(args) == 0
    run = tmp_path / "tiny"
    assert state(run) == {"epoch": 4, "epoch_samples": 0, "step": 6, "samples": 6, "validations_since_best": 2}
    assert state(run, "3") == state(run)
    assert not (run / "4.pt").exists()
    assert steps(run, "val") == [2, 4, 6] and steps(run, None)[-1] == 6
    assert shown == [(6, True, True)]


def test_killed_and_resumed_stops_where_the_uninterrupted_run_did(stopped, data: Path, tmp_path: Path) -> None:
    ck, _, _ = stopped
    args = tiny_args(data, tmp_path) + EVERY_STEP
    assert train_driver.main(args + ["--max_steps", "2"]) == 0   # killed after step 2 (1 validation since best)
    assert state(tmp_path / "tiny")["validations_since_best"] == 1
    assert train_driver.main(args + ["--continue_train"]) == 0
    resumed, uninterrupted = load_file(tmp_path / "tiny" / "latest.pt"), load_file(ck / "tiny" / "latest.pt")
    assert resumed["state"] == uninterrupted["state"]
    for name, net in uninterrupted["nets"].items():
        assert all(torch.equal(net[k], resumed["nets"][name][k]) for k in net)
    assert steps(tmp_path / "tiny", "val") == [1, 2, 3]


def test_a_resume_from_a_checkpoint_older_than_best_counts_from_the_best_again(data: Path, tmp_path: Path) -> None:
    """Validating every 2 steps with N = 1: best at step 2, a tie at step 4 ends the run. A hard
    kill leaves 'latest' at step 1 and best.pt at step 2: the resumed run scores step 2 again,
    which is the recorded best's own figure (not a validation since it), and also ends at 4."""
    args = tiny_args(data, tmp_path) + FROZEN + ["--val_freq", "2", "--early_stop", "1"]
    run = tmp_path / "tiny"
    assert train_driver.main(args + ["--max_steps", "1"]) == 0
    older = tmp_path / "older"
    older.mkdir()
    for name in ("latest.pt", "latest_net_G.pt"):
        shutil.copy(run / name, older / name)
    assert train_driver.main(args + ["--max_steps", "2", "--continue_train"]) == 0
    assert load_file(run / "best.pt")["best"]["step"] == 2
    for name in ("latest.pt", "latest_net_G.pt"):   # what a SIGKILL before the next 'latest' leaves
        shutil.copy(older / name, run / name)
    assert train_driver.main(args + ["--continue_train"]) == 0
    assert state(run)["step"] == 4 and state(run)["validations_since_best"] == 1


def test_a_resume_of_a_stopped_run_trains_nothing_unless_early_stop_is_raised(stopped, data: Path, tmp_path: Path,
                                                                            capsys) -> None:
    ck, _, _ = stopped
    shutil.copytree(ck, tmp_path / "ck")
    run = tmp_path / "ck" / "tiny"
    args = tiny_args(data, tmp_path / "ck") + EVERY_STEP + ["--continue_train"]
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    capsys.readouterr()
    assert train_driver.main(args) == 0
    out = capsys.readouterr().out
    assert ("training already complete by --early_stop 2: 2 validations without a better l1 as of step 3; "
            "raise --early_stop above 2 or set it to 0 to go on") in out
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before

    # Raised to 3: one more tie (step 4) ends it; a validation setting, not a change of the run.
    assert train_driver.main(args + ["--early_stop", "3"]) == 0
    out = capsys.readouterr().out
    assert "validation settings changed: early_stop 2 -> 3" in out and "differ from the checkpoint" not in out
    assert state(run)["step"] == 4 and state(run)["validations_since_best"] == 3
    # Switched off: the run goes on (here to --max_steps 5).
    assert train_driver.main(args + ["--early_stop", "0", "--max_steps", "5"]) == 0
    assert state(run)["step"] == 5 and state(run)["validations_since_best"] == 4


@pytest.mark.parametrize("extra, message", [
    (["--early_stop", "2"], "--early_stop 2 needs validation: add --val_freq N (samples) "
                             "or --val_epoch_freq N (epochs), and --best_metric"),
    (["--early_stop", "2", "--val_freq", "1"], "--early_stop 2 needs --best_metric (the metric whose best it "
                                               "watches)"),
    (["--early_stop", "2", "--val_freq", "1", "--best_metric", "none"],
     "--early_stop 2 needs --best_metric (the metric whose best it watches, not none)"),
])
def test_early_stop_without_a_best_to_watch_is_one_line(extra: list[str], message: str, data: Path,
                                                       tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        train_driver.main(tiny_args(data, tmp_path / "ck") + extra)
    assert exited.value.code != 0
    err = capsys.readouterr().err
    assert err == f"train.py: error: {message} (see --help)\n"
    assert not (tmp_path / "ck").exists()


def test_two_gloo_ranks_stop_after_the_same_step(tmp_path: Path) -> None:
    """4 pairs over 2 ranks at batch 1: 2 samples a step, so --val_freq 2 validates every step and
    N = 2 ends after step 3 on both ranks (a rank going on alone would hang the job until
    --dist_timeout and fail it)."""
    data = make_aligned_dataset(tmp_path / "data", {"train": 4, "val": 2})
    args = tiny_args(data, tmp_path / "ck") + FROZEN + ["--val_freq", "2", "--early_stop", "2", "--nproc", "2",
                                                         "--dist_timeout", "30"]
    assert train_driver.main(args) == 0
    run = tmp_path / "ck" / "tiny"
    assert state(run)["step"] == 3 and state(run)["validations_since_best"] == 2
    assert steps(run, "val") == [1, 2, 3] and steps(run, None) == [1, 2, 3]
