"""install.sh's torch build per CPU class: scripts/torch_choice.py against hand-written flag sets
and measurement tables, the real data file, the README's table of it, and `install.sh --plan`."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_install_and_defaults import _install, _pip_env, _wheels, python_without_torch  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("torch_choice", ROOT / "scripts" / "torch_choice.py")
tc = importlib.util.module_from_spec(_spec)
sys.modules["torch_choice"] = tc   # dataclasses look their module up while the file runs
_spec.loader.exec_module(tc)

# Flag lines as /proc/cpuinfo shows them (abridged to the flags that matter and some around them).
SAPPHIRE_RAPIDS = ("fpu sse2 avx avx2 fma avx512f avx512dq avx512cd avx512bw avx512vl avx512_bf16 "
                   "avx512_fp16 avx512_vnni amx_bf16 amx_tile amx_int8")
ZEN4 = "fpu sse2 avx avx2 fma avx512f avx512dq avx512cd avx512bw avx512vl avx512_bf16 avx512_vnni"
SKYLAKE_SP = "fpu sse2 avx avx2 fma avx512f avx512dq avx512cd avx512bw avx512vl"
EPYC_ZEN2 = "fpu sse2 avx avx2 fma bmi2 sha_ni"
ARM_FEATURES = "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm"


@pytest.mark.parametrize("flags, expected", [
    (SAPPHIRE_RAPIDS, "amx"), (ZEN4, "avx512_bf16"), (SKYLAKE_SP, "avx512"), (EPYC_ZEN2, "avx2"),
    (ARM_FEATURES, "other"), ("", "other"),
    # AMX tiles without its bf16 part are not what the class means.
    ("avx2 avx512f avx512_bf16 amx_tile", "avx512_bf16"),
])
def test_cpu_class_from_flags(flags: str, expected: str) -> None:
    assert tc.cpu_class(flags.split()) == expected


def test_machine_flags_read_the_flags_line_and_arm_or_no_cpuinfo_are_other_and_unknown(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PIX2PIX_CPU_FLAGS", raising=False)
    x86 = tmp_path / "x86"
    x86.write_text(f"processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: {EPYC_ZEN2}\nbugs\t\t: sysret_ss_attrs\n")
    arm = tmp_path / "arm"
    arm.write_text(f"processor\t: 0\nFeatures\t: {ARM_FEATURES}\nCPU implementer\t: 0x41\n")
    assert tc.machine_flags(x86) == set(EPYC_ZEN2.split())
    assert tc.machine_flags(arm) == set()
    assert tc.machine_flags(tmp_path / "absent") is None
    monkeypatch.setenv("PIX2PIX_CPU_FLAGS", ZEN4)
    assert tc.machine_flags(x86) == set(ZEN4.split())


def _m(build: str, torch: str, seconds: float, pip: str = "torch==9.9") -> dict:
    return {"build": build, "torch": torch, "pip": pip, "s_per_step": seconds, "what": "a step",
            "cpu": "a CPU", "source": "a hand-written table"}


def _table(**classes: list[dict]):
    return tc.parse_measurements({"classes": classes}, "table")


def test_the_fastest_measured_build_wins() -> None:
    table = _table(avx2=[_m("cpu", "2.13.0+cpu", 0.2), _m("index", "2.14.1+cu130", 0.1, "torch==2.14.1")],
                   avx512=[_m("index", "2.14.1+cu130", 0.3), _m("cpu", "2.13.0+cpu", 0.25),
                           _m("cpu", "2.12.0+cpu", 0.27)])
    index = tc.choose("avx2", table, free_gb=50)
    assert (index.build, index.pip) == ("index", "torch==2.14.1")
    assert index.reason == ("AVX2 only (e.g. AMD EPYC Zen 2/3, Intel Haswell to Comet Lake): torch 2.14.1+cu130 "
                            "measured 0.100 s/step against 0.200 for 2.13.0+cpu (a step; a CPU), so the index's "
                            "build (needs ~9 GB, 50 GB free)")
    cpu = tc.choose("avx512", table, free_gb=50)
    assert (cpu.build, cpu.pip) == ("cpu", None)
    assert "torch 2.13.0+cpu measured 0.250 s/step against 0.270 for 2.12.0+cpu, 0.300 for 2.14.1+cu130" in cpu.reason
    assert cpu.reason.endswith("so the CPU-only build")


def test_the_index_build_must_win_beyond_the_spread_of_the_rounds() -> None:
    ranged = lambda build, seconds, low, high: {**_m(build, build, seconds), "s_per_step_range": [low, high]}
    overlap = _table(avx512_bf16=[ranged("cpu", 0.072, 0.069, 0.075), ranged("index", 0.070, 0.068, 0.071)])
    choice = tc.choose("avx512_bf16", overlap, free_gb=50)
    assert (choice.build, choice.pip) == ("cpu", None)
    assert choice.reason.endswith("against 0.072 for cpu (a step; a CPU); the ranges overlap, so the smaller "
                                  "CPU-only build")
    apart = _table(avx512_bf16=[ranged("cpu", 0.080, 0.076, 0.084), ranged("index", 0.070, 0.068, 0.075)])
    assert tc.choose("avx512_bf16", apart, free_gb=50).build == "index"


def test_the_index_build_without_the_disk_space_falls_back_to_cpu_with_the_reason() -> None:
    table = _table(avx2=[_m("cpu", "2.13.0+cpu", 0.2), _m("index", "2.14.1+cu130", 0.1)])
    choice = tc.choose("avx2", table, free_gb=8.4)
    assert (choice.build, choice.pip) == ("cpu", None)
    assert "measured 0.100 s/step against 0.200" in choice.reason
    assert choice.reason.endswith("but the index's build needs ~9 GB and 8 GB are free, so the CPU-only build")
    assert tc.choose("avx2", table, free_gb=9.0).build == "index"
    assert tc.choose("avx2", table, free_gb=20, index_gb_needed=30).build == "cpu"


@pytest.mark.parametrize("cls", ["amx", "other", "unknown"])
def test_a_class_without_measurements_gets_the_cpu_only_build(cls: str) -> None:
    choice = tc.choose(cls, _table(avx2=[_m("index", "2.14.1+cu130", 0.1)]), free_gb=100)
    assert (choice.build, choice.pip) == ("cpu", None)
    assert choice.reason == f"no measurement for CPU class {cls} ({tc.HUMAN[cls]}): the smaller CPU-only build"


@pytest.mark.parametrize("classes, message", [
    ({"avx3": [_m("cpu", "2.13.0+cpu", 0.1)]}, "table: unknown CPU class 'avx3'"),
    ({"avx2": [{k: v for k, v in _m("cpu", "2.13.0+cpu", 0.1).items() if k != "source"}]},
     "table: avx2[0]: missing source"),
    ({"avx2": [{**_m("cpu", "2.13.0+cpu", 0.1), "source": " "}]}, "table: avx2[0]: source is empty"),
    ({"avx2": [_m("rocm", "2.13.0+rocm", 0.1)]}, "table: avx2[0]: build 'rocm' is none of cpu, index"),
    ({"avx2": [_m("cpu", "2.13.0+cpu", 0)]}, "table: avx2[0]: s_per_step must be a positive number"),
    ({"avx2": [{**_m("cpu", "2.13.0+cpu", 0.1), "s_per_step_range": [0.1]}]},
     "table: avx2[0]: s_per_step_range must be [low, high]"),
    ({"avx2": [_m("cpu", "2.13.0+cpu", 0.1), {**_m("index", "2.14.1", 0.1), "cpu": "another CPU"}]},
     "table: avx2: the entries differ in 'cpu', so they do not compare"),
])
def test_a_bad_measurements_table_is_refused_naming_the_entry(classes: dict, message: str) -> None:
    with pytest.raises(tc.MeasurementsError, match="^" + message.replace("[", r"\[").replace("(", r"\(")):
        _table(**classes)


def test_the_data_file_parses_and_every_figure_names_its_source() -> None:
    raw = json.loads(tc.DATA.read_text())["classes"]
    table = tc.load_measurements()
    assert table and set(table) == set(raw) <= {c.name for c in tc.CPU_CLASSES}
    for cls, builds in table.items():
        assert builds, cls
        for m, entry in zip(builds, raw[cls]):
            assert set(tc.FIELDS) <= set(entry) and m.source.strip() and m.cpu.strip() and m.what.strip()
            assert m.pip.startswith("torch==") and m.torch.startswith(m.pip.removeprefix("torch=="))
            if m.s_per_step_range:
                assert m.s_per_step_range[0] <= m.s_per_step <= m.s_per_step_range[1]


def test_the_readme_table_is_the_data_file() -> None:
    assert tc.readme_table(tc.load_measurements()) in (ROOT / "README.md").read_text()


def test_the_script_prints_lines_for_install_sh(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                capsys: pytest.CaptureFixture) -> None:
    data = tmp_path / "builds.json"
    data.write_text(json.dumps({"classes": {"avx2": [_m("index", "2.14.1+cu130", 0.1, "torch==2.14.1")]}}))
    monkeypatch.setenv("PIX2PIX_CPU_FLAGS", EPYC_ZEN2)
    monkeypatch.setenv("PIX2PIX_FREE_GB", "12")
    assert tc.main(["--env-prefix", str(tmp_path / "not" / "yet"), "--data", str(data)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:2] == ["BUILD=index", "PIP=torch==2.14.1"] and lines[2].startswith("REASON=AVX2 only")
    data.write_text("{")
    assert tc.main(["--env-prefix", str(tmp_path), "--data", str(data)]) == 1
    assert capsys.readouterr().err.startswith(f"torch_choice.py: {data}: ")


def test_free_space_is_measured_on_the_nearest_existing_folder(monkeypatch: pytest.MonkeyPatch,
                                                                tmp_path: Path) -> None:
    import shutil
    monkeypatch.delenv("PIX2PIX_FREE_GB", raising=False)
    assert tc.free_gb(tmp_path / "a" / "b") == pytest.approx(shutil.disk_usage(tmp_path).free / 1e9, rel=0.05)


def _plan(python: str, links: Path, flags: str, free: str) -> str:
    result = _install("--plan", python=python, PIX2PIX_NVIDIA_GPU="0", PIX2PIX_CPU_FLAGS=flags,
                      PIX2PIX_FREE_GB=free, TORCH_CPU_INDEX="http://127.0.0.1:9/whl/cpu", **_pip_env(links))
    assert result.returncode == 0, result.stderr
    [line] = result.stdout.strip().splitlines()
    return line


def test_install_plan_follows_the_measurements(tmp_path: Path, python_without_torch: str) -> None:
    links = _wheels(tmp_path / "links", "torch-2.13.0+cpu", "torch-2.14.1")
    avx2 = sorted(tc.load_measurements()["avx2"], key=lambda m: m.s_per_step)
    assert avx2[0].build == "index"   # what the data file says for AVX2 today
    plan = _plan(python_without_torch, links, EPYC_ZEN2, "50")
    assert plan.startswith(f"install.sh --plan: torch: the package index's default build, {avx2[0].pip} "
                           f"(no NVIDIA GPU here; AVX2 only")
    assert all(f"{m.s_per_step:.3f}" in plan for m in avx2) and plan.endswith("(needs ~9 GB, 50 GB free))")
    small_disk = _plan(python_without_torch, links, EPYC_ZEN2, "4")
    assert small_disk.startswith("install.sh --plan: torch: CPU-only 2.13.0+cpu (no NVIDIA GPU here; AVX2 only")
    assert small_disk.endswith("needs ~9 GB and 4 GB are free, so the CPU-only build)")
    unmeasured = _plan(python_without_torch, links, "fpu sse sse2", "50")
    assert unmeasured == ("install.sh --plan: torch: CPU-only 2.13.0+cpu (no NVIDIA GPU here; no measurement for "
                          "CPU class other (older x86 without AVX2, or ARM): the smaller CPU-only build)")


def _refused_by_install_sh(log: str) -> bool:
    """install.sh's own refused_by_pip function, run on ``log``."""
    script = 'eval "$(sed -n "/^refused_by_pip() {/,/^}/p" install.sh)"; refused_by_pip "$LOG"'
    return subprocess.run(["bash", "-c", script], cwd=ROOT, env={**os.environ, "LOG": log}).returncode == 0


@pytest.mark.parametrize("cap, requirement, refused", [
    ("torch<=2.13.0", "torch==2.14.1", True),     # a cap of pip's constraints
    ("", "torch==2.15.0", True),                  # no index has it
    # pip finds it but fails otherwise (here: the wheel file is empty): reported as it is, no fallback.
    ("", "torch==2.14.1", False),
])
def test_install_sh_falls_back_on_what_pip_says_when_it_refuses_the_measured_version(
        tmp_path: Path, python_without_torch: str, cap: str, requirement: str, refused: bool) -> None:
    # A pip with no torch beside it, as install.sh meets it: this interpreter may hold the very
    # version asked for (an AVX2 machine installs 2.14.1), and pip would then have nothing to do.
    links = _wheels(tmp_path / "links", "torch-2.13.0+cpu", "torch-2.14.1")
    (tmp_path / "cap.txt").write_text(cap)
    pip = subprocess.run([python_without_torch, "-m", "pip", "install", "--dry-run", "--no-deps", "-c",
                          str(tmp_path / "cap.txt"), requirement], capture_output=True, text=True, timeout=120,
                         env={**os.environ, **_pip_env(links)})
    assert pip.returncode != 0
    assert _refused_by_install_sh(pip.stdout + pip.stderr) == refused
    assert not _refused_by_install_sh("ERROR: Could not install packages due to an OSError: [Errno 28] "
                                      "No space left on device")
