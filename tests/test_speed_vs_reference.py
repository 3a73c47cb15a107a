"""benchmarks/vs_reference.py: the clock and the command lines, against a stand-in reference
that prints its step lines (between other output), read on a fake clock whose per-step time
is known."""
from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
from benchmarks import vs_reference
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
    """Read once at the start, once per step line, once at the end: the first step line comes
    ``startup`` seconds after the start, each next one ``gap`` seconds later."""

    def __init__(self, startup: float, gap: float) -> None:
        self.startup, self.gap, self.reads = startup, gap, 0

    def __call__(self) -> float:
        self.reads += 1
        return 0.0 if self.reads == 1 else self.startup + self.gap * (self.reads - 2)


def test_step_time_comes_from_the_gaps_between_step_lines(tmp_path, monkeypatch):
    ref = fake_reference(tmp_path)
    out = tmp_path / "out.jsonl"
    clock = LineClock(startup=0.3, gap=0.2)
    monkeypatch.setattr(vs_reference, "time_one", functools.partial(vs_reference.time_one, clock=clock))
    args = vs_reference.parse(["--reference", str(ref), "--variants", "reference", "--configs", "small",
                               "--steps", "6", "--warmup", "2", "--rounds", "1", "--out", str(out),
                               "--dataroot", str(ROOT / "tests" / "fixtures" / "facades")])
    (record,) = vs_reference.run(args)
    # Only the 6 step lines were stamped (the other lines were not), and the program's own
    # "time: 9.999" and its start-up are ignored: 0.2 s per step.
    assert clock.reads == 1 + 6 + 1
    assert record["s_per_step"] == pytest.approx(0.2, abs=1e-9)
    assert record["vs_reference"] == 1.0 and record["startup_s"] == pytest.approx(0.3)
    written = json.loads(out.read_text().splitlines()[0])
    assert written["variant"] == "reference" and "cpu_features" in written["machine_info"]
    argv = json.loads((ref / "argv.json").read_text())
    # The same model flags as ours, one epoch over --steps images, nothing saved, batch 1.
    for flag, value in (("--netG", "unet_128"), ("--ngf", "32"), ("--crop_size", "128"), ("--n_epochs", "1"),
                        ("--n_epochs_decay", "0"), ("--batch_size", "1"), ("--print_freq", "1")):
        assert argv[argv.index(flag) + 1] == value


def test_the_warmup_steps_are_left_out(tmp_path):
    """Step lines 0.3 s apart in the warm-up, then 0.1: only the gaps after the warm-up count."""
    ref = fake_reference(tmp_path)
    times = iter([0.0, 1.0, 1.3, 1.6, 1.7, 1.8, 1.9, 5.0])
    record = vs_reference.time_one([sys.executable, str(ref / "train.py"), "--max_dataset_size", "6"], {},
                                   "reference", 3, ref, clock=lambda: next(times))
    assert record["s_per_step"] == pytest.approx(0.1) and record["steps_timed"] == 2
    assert record["startup_s"] == 1.0 and record["wall_s"] == 5.0


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
