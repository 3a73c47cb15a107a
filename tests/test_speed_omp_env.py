"""The OpenMP waiting rule (util/omp_env.py): libgomp's bounded-spin default where every thread
has a free core, PASSIVE when the machine is already oversubscribed, the user's own settings
left alone. The speed of each policy is measured in benchmarks/vs_reference.py."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from util.omp_env import USER_KEYS, choose_omp_wait, others_running, set_omp_wait_policy

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("busy,cpus,threads,expected", [
    (0, 2, 2, {}),                                # quiet: keep the bounded spin
    (0.4, 2, 2, {}),                              # a little background noise is not a second job
    (1, 2, 2, {"OMP_WAIT_POLICY": "PASSIVE"}),    # one other runnable task + our 2 threads > 2 cores
    (1, 2, 1, {}),                                # one thread of ours fits beside it
    (6, 16, 8, {}),                               # a big machine with room to spare
    (9, 16, 8, {"OMP_WAIT_POLICY": "PASSIVE"}),
])
def test_passive_only_when_the_machine_is_oversubscribed(busy, cpus, threads, expected):
    assert choose_omp_wait({}, lambda: busy, cpus, threads) == expected


def write_stat(path: Path, running: int) -> str:
    path.write_text(f"cpu  1 2 3 4\nctxt 99\nprocs_running {running}\nprocs_blocked 0\n")
    return str(path)


def test_others_running_reads_procs_running_less_this_process(tmp_path):
    assert others_running(write_stat(tmp_path / "stat", 3), reads=3, interval_s=0) == 2.0
    assert others_running(write_stat(tmp_path / "stat", 1), reads=1) == 0.0
    assert others_running(str(tmp_path / "missing"), reads=1) is None
    (tmp_path / "odd").write_text("cpu 1 2\n")
    assert others_running(str(tmp_path / "odd"), reads=1) is None


class PlayedBackStat:
    """A /proc/stat whose ``procs_running`` moves on to the next value at each pause between
    reads: the kernel's counts while other jobs start and end, played back without them."""

    def __init__(self, path: Path, counts: list[int]) -> None:
        self.path, self.counts, self.pauses = path, list(counts), []
        write_stat(path, self.counts.pop(0))

    def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        write_stat(self.path, self.counts.pop(0))


def test_two_running_jobs_count_as_busy_and_a_momentary_spike_does_not(tmp_path):
    """procs_running counts this process too: 3 while two other jobs spin is 2 others. The
    median of the reads keeps one read caught during a burst of short tasks from counting."""
    busy = PlayedBackStat(tmp_path / "stat", [3, 3, 3, 3, 3])
    assert others_running(str(busy.path), reads=5, interval_s=0.01, sleep=busy.sleep) == 2.0
    assert busy.pauses == [0.01] * 4 and busy.counts == []
    spike = PlayedBackStat(tmp_path / "stat", [1, 7, 1, 2, 1])
    assert others_running(str(spike.path), reads=5, sleep=spike.sleep) == 0.0
    # The kernel's own file has the line in the format played back here (its value is the load's).
    assert isinstance(others_running(reads=1), float)


def test_a_finished_run_stops_counting_at_once_unlike_the_load_average(tmp_path, monkeypatch):
    """Two jobs that just ended still weigh 2 in the 1-minute load average; the runnable count
    drops at once, and it is what the rule reads. The load average is the fallback only where
    /proc/stat cannot be read."""
    import util.omp_env as omp_env

    ended = PlayedBackStat(tmp_path / "stat", [3, 1, 1, 1, 1])   # they end after the first read
    real_reader = omp_env.others_running
    monkeypatch.setattr(omp_env.os, "getloadavg", lambda: (2.0, 1.5, 0.7))
    monkeypatch.setattr(omp_env, "others_running", lambda: real_reader(str(ended.path), sleep=ended.sleep))
    assert omp_env.machine_busy() == 0.0
    monkeypatch.setattr(omp_env, "others_running", lambda: real_reader(str(tmp_path / "missing")))
    assert omp_env.machine_busy() == 2.0


def unread() -> float:
    raise AssertionError("the machine's load was read although the choice did not depend on it")


def test_the_users_settings_and_the_override_win():
    for key in USER_KEYS:
        assert choose_omp_wait({key: "x"}, unread, 2, 2) == {}
    assert choose_omp_wait({"PIX2PIX_OMP_POLICY": "default"}, unread, 2, 2) == {}
    assert choose_omp_wait({"PIX2PIX_OMP_POLICY": "passive"}, unread, 2, 2) == {"OMP_WAIT_POLICY": "PASSIVE"}
    assert choose_omp_wait({"PIX2PIX_OMP_POLICY": "AUTO"}, lambda: 0.0, 2, 2) == {}
    with pytest.raises(ValueError, match="PIX2PIX_OMP_POLICY='spin' is not one of auto, default, passive"):
        choose_omp_wait({"PIX2PIX_OMP_POLICY": "spin"}, unread, 2, 2)


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in (*USER_KEYS, "PIX2PIX_OMP_POLICY")}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**clean, **env}, capture_output=True,
                          text=True, timeout=120)


def test_the_policy_reaches_libgomp_before_torch_loads():
    # What libgomp itself reports (OMP_DISPLAY_ENV=verbose prints its settings at start-up).
    # It labels any policy short of ACTIVE 'PASSIVE'; the spin count tells them apart:
    # 300000 is its default bounded spin, 0 a true PASSIVE.
    code = ("import os; from util.omp_env import set_omp_wait_policy; print(set_omp_wait_policy()); "
            "import torch; torch.ones(64, 64).sum()")
    passive = run_python(code, PIX2PIX_OMP_POLICY="passive", OMP_DISPLAY_ENV="verbose")
    assert passive.stdout.splitlines()[0] == "{'OMP_WAIT_POLICY': 'PASSIVE'}"
    assert "GOMP_SPINCOUNT = '0'" in passive.stderr
    default = run_python(code, PIX2PIX_OMP_POLICY="default", OMP_DISPLAY_ENV="verbose")
    assert default.stdout.splitlines()[0] == "{}"
    assert "GOMP_SPINCOUNT = '300000'" in default.stderr
    user = run_python(code, PIX2PIX_OMP_POLICY="passive", OMP_WAIT_POLICY="ACTIVE", OMP_DISPLAY_ENV="verbose")
    assert user.stdout.splitlines()[0] == "{}" and "OMP_WAIT_POLICY = 'ACTIVE'" in user.stderr


def test_a_bad_override_is_one_line_and_too_late_is_said():
    bad = run_python("from util.omp_env import set_omp_wait_policy; set_omp_wait_policy()",
                     PIX2PIX_OMP_POLICY="spin")
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert bad.stderr.strip() == "error: PIX2PIX_OMP_POLICY='spin' is not one of auto, default, passive"
    import torch  # noqa: F401  (loaded by now anyway; the runtime has read its settings)
    assert set_omp_wait_policy() is None


@pytest.mark.parametrize("policy,others,expected", [
    ("auto", "0", "quiet"), ("auto", "1", "busy"),
    ("passive", "0", "quiet"),   # a forced policy says nothing about the load: it is read anyway
    ("default", "1", "busy"),
])
def test_the_load_at_start_is_recorded_whatever_the_policy(policy, others, expected):
    """engine/amp_auto.py keeps --amp auto's decisions apart by it (a quiet PASSIVE decision is
    not reused on a loaded machine). 2 usable CPUs, 2 threads."""
    code = ("from util import omp_env; omp_env.machine_busy = lambda: float(%s); "
            "omp_env.usable_cpus = lambda: 2; omp_env.set_omp_wait_policy(); print(omp_env.start_load)" % others)
    out = run_python(code, PIX2PIX_OMP_POLICY=policy, OMP_NUM_THREADS="2")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == expected
