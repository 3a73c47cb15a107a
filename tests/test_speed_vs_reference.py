"""benchmarks/vs_reference.py: the clock and the command lines, against a stand-in reference
that prints its step lines (between other output), read on a fake clock whose per-step time
is known. The measures themselves: tests/test_vs_reference_measure.py."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
from benchmarks import vs_reference, whole_run
from tests.clone_env import clone_env

# Prints the reference's step lines (with its "[Rank 0]" prefix) with other lines between them,
# and records the flags it was given.
FAKE_TRAIN = '''
import json, sys
print("create web directory ./checkpoints/web...")
json.dump(sys.argv[1:], open("argv.json", "w"))
steps = int(sys.argv[sys.argv.index("--max_dataset_size") + 1])
for i in range(steps):
    print(f"[Rank 0] (epoch: 1, iters: {i + 1}, time: 9.999, data: 0.000) , G_GAN: 0.7")
    print("")
'''


def fake_reference(tmp_path: Path) -> Path:
    ref = tmp_path / "ref"
    ref.mkdir()
    (ref / "train.py").write_text(FAKE_TRAIN)
    return ref


class LineClock:
    """Read once at the start, once per line of the fake's stdout, once at the exit: the web
    line at 0.1 s, step line i (from 0) at ``startup + gap * i``, the empty line after it 0.05 s
    later, the exit 0.5 s after the last step line."""

    def __init__(self, steps: int, startup: float, gap: float) -> None:
        self.steps, self.reads = steps, 0
        lines = [t for i in range(steps) for t in (startup + gap * i, startup + gap * i + 0.05)]
        self.times = [0.0, 0.1, *lines, startup + gap * (steps - 1) + 0.5]

    def __call__(self) -> float:
        self.reads += 1
        return self.times[self.reads - 1]


def test_the_reference_is_timed_from_its_own_step_lines(tmp_path, monkeypatch):
    ref = fake_reference(tmp_path)
    out = tmp_path / "out.jsonl"
    clocks: list[LineClock] = []

    def timed(cmd, env, step_line, cwd):
        clocks.append(LineClock(int(cmd[cmd.index("--max_dataset_size") + 1]), startup=0.3, gap=0.2))
        return whole_run.time_process(cmd, env, step_line, cwd, clock=clocks[-1])
    monkeypatch.setattr(vs_reference, "time_process", timed)
    args = vs_reference.parse(["--reference", str(ref), "--variants", "reference", "--configs", "small",
                               "--steps", "6", "--short_steps", "3", "--warmup", "2", "--rounds", "1",
                               "--out", str(out), "--dataroot", str(ROOT / "tests" / "fixtures" / "facades")])
    (record,) = vs_reference.run(args)
    # Every line was read on the clock, only the "[Rank 0]" step lines were stamped; the
    # program's own "time: 9.999" and its start-up are ignored: 0.2 s per step by both measures.
    assert [c.steps for c in clocks] == [6, 3] and all(c.reads == len(c.times) for c in clocks)
    assert record["s_per_step_wall"] == pytest.approx(0.2) and record["s_per_step_gap"] == pytest.approx(0.2)
    assert record["vs_reference_wall"] == 1.0 and record["vs_reference_gap"] == 1.0
    assert record["first_line_s"] == pytest.approx(0.3) and record["end_s"] == pytest.approx(0.5)
    written = json.loads(out.read_text().splitlines()[0])
    assert written["variant"] == "reference" and "cpu_features" in written["machine_info"]
    argv = json.loads((ref / "argv.json").read_text())   # the last process's: the short one
    # The same model flags as ours, one epoch over --short_steps images, nothing saved, batch 1.
    for flag, value in (("--netG", "unet_128"), ("--ngf", "32"), ("--crop_size", "128"), ("--n_epochs", "1"),
                        ("--n_epochs_decay", "0"), ("--batch_size", "1"), ("--print_freq", "1"),
                        ("--max_dataset_size", "3"), ("--save_epoch_freq", "1000")):
        assert argv[argv.index(flag) + 1] == value


def test_our_command_line_and_environment_per_variant(tmp_path):
    cmd = vs_reference.command(vs_reference.VARIANTS["fp32_threads1"], "paper", 12, None, tmp_path, tmp_path)
    assert cmd[1].endswith("train.py") and cmd[cmd.index("--max_steps") + 1] == "12"
    assert cmd[cmd.index("--netG") + 1] == "unet_256" and cmd[-4:] == ["--amp", "none", "--torch_threads", "1"]
    env = vs_reference.environment(vs_reference.VARIANTS["fp32_spin30k"], None)
    assert env["GOMP_SPINCOUNT"] == "30000" and "OMP_WAIT_POLICY" not in env
    assert vs_reference.environment(vs_reference.VARIANTS["fp32_omp_default"], None)["PIX2PIX_OMP_POLICY"] == "default"


def test_the_reference_and_the_refpy_variants_run_under_the_reference_python(tmp_path):
    ref = fake_reference(tmp_path)
    run = lambda name: vs_reference.command(vs_reference.VARIANTS[name], "small", 8, ref, tmp_path, tmp_path,
                                            "/envs/ref/bin/python")
    assert run("reference")[:2] == ["/envs/ref/bin/python", str(ref / "train.py")]
    assert run("fp32_refpy")[:2] == ["/envs/ref/bin/python", str(ROOT / "train.py")]
    assert run("fp32_refpy")[2:] == run("fp32")[2:] and run("fp32")[0] == sys.executable


def test_bad_arguments_are_one_line(tmp_path):
    run = lambda *a: subprocess.run([sys.executable, str(ROOT / "benchmarks" / "vs_reference.py"), *a],
                                    capture_output=True, text=True, timeout=120, env=clone_env())
    missing = run("--reference", str(tmp_path), "--variants", "reference")
    assert missing.returncode != 0 and missing.stderr.strip() == \
        f"vs_reference.py: error: --reference {tmp_path}: no train.py there"
    unknown = run("--variants", "fp64")
    assert unknown.returncode != 0 and "Traceback" not in unknown.stderr and "fp64" in unknown.stderr
    python = run("--reference_python", str(tmp_path / "nopython"))
    assert python.returncode == 1 and python.stderr.strip() == \
        f"vs_reference.py: error: --reference_python {tmp_path / 'nopython'}: no such interpreter"
    steps = run("--steps", "3", "--warmup", "5")
    assert steps.returncode == 2 and "--steps 3 must exceed --warmup 5" in steps.stderr
    short = run("--steps", "10", "--short_steps", "10")
    assert short.returncode == 2 and "--short_steps 10 must be at least 1 and below --steps 10" in short.stderr
    warmup = run("--warmup", "0")
    assert warmup.returncode == 2 and "--warmup 0: at least 1" in warmup.stderr
