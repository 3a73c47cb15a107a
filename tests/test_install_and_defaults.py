"""Issue 11: loader workers fit the machine, and an unsafe checkpoint gets an honest refusal."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from options.base import default_loader_workers
from options.parse import parse_options
from engine.checkpoint import CheckpointError, load_file

ROOT = Path(__file__).resolve().parents[1]


def test_loader_workers_default_to_the_usable_cpus_at_most_4() -> None:
    usable = len(os.sched_getaffinity(0))
    assert default_loader_workers() == min(4, usable)
    assert parse_options(["--dataroot", "x"], is_train=True).num_threads == min(4, usable)
    assert parse_options(["--dataroot", "x", "--num_threads", "3"], is_train=True).num_threads == 3


def test_one_cpu_gives_one_worker_and_no_torch_warning(tmp_path: Path) -> None:
    code = ("import os, warnings; os.sched_setaffinity(0, {0});"
            "from options.base import default_loader_workers; print(default_loader_workers())")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"


class _RunsCode:
    def __reduce__(self):  # what a malicious or foreign pickle carries: a call to make
        return (os.getcwd, ())


def test_a_checkpoint_with_code_objects_is_refused_as_unsafe_without_the_weights_only_advice(
        tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"nets": _RunsCode()}, path)
    with pytest.raises(CheckpointError) as err:
        load_file(path)
    message = str(err.value)
    assert str(path) in message and "refused as unsafe" in message
    assert "weights_only" not in message and "\n" not in message


def test_every_declared_requirement_imports_and_setuptools_is_in_the_held_range() -> None:
    import dominate, tensorboard, torchmetrics, visdom  # noqa: F401  (an ImportError is an install failure)
    from importlib.metadata import version
    from packaging.version import Version
    assert Version("77.0.3") <= Version(version("setuptools")) < Version("81")
    assert version("visdom") == "0.2.4" and Version(version("tornado")) < Version("6.6")


# pip sees only the given find-links folder: no config files, no index.
def _pip_env(find_links: Path) -> dict[str, str]:
    return {"PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(find_links)}


def _install(*args: str, python: str = sys.executable, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "install.sh", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHON": python, **env}, timeout=120)


def test_install_sh_rejects_an_unknown_option_in_one_line() -> None:
    result = _install("--gpu")
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        "install.sh: unknown option '--gpu' (use --cpu, --cuda, --force, --plan)"]


def test_install_cpu_route_says_in_one_line_when_no_cpu_wheel_can_be_found(tmp_path: Path) -> None:
    result = _install("--cpu", "--force", TORCH_CPU_INDEX="http://127.0.0.1:9/whl/cpu", **_pip_env(tmp_path))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "install.sh: --cpu: no CPU-only torch wheel in pip's indexes, and PyTorch's CPU wheel index "
        "http://127.0.0.1:9/whl/cpu cannot be reached (set TORCH_CPU_INDEX to a mirror, or install "
        "without --cpu)"]


@pytest.fixture(scope="module")
def python_without_torch(tmp_path_factory: pytest.TempPathFactory) -> str:
    env = tmp_path_factory.mktemp("bare") / "env"
    subprocess.run([sys._base_executable, "-m", "venv", str(env)], check=True, timeout=120)
    return str(env / "bin" / "python")


def _wheels(folder: Path, *names: str) -> Path:
    folder.mkdir()
    for name in names:   # pip lists versions from the file names alone
        (folder / f"{name}-cp311-cp311-manylinux_2_28_x86_64.whl").touch()
    return folder


# A CPU class with no measured build (tests/test_torch_choice.py covers the measured ones).
UNMEASURED_FLAGS = "fpu sse sse2"
UNMEASURED = "no measurement for CPU class other (older x86 without AVX2, or ARM): the smaller CPU-only build"


@pytest.mark.parametrize("gpu, wheels, plan", [
    ("0", ["torch-2.12.0+cpu", "torch-2.13.0+cpu", "torch-2.14.1"],
     f"torch: CPU-only 2.13.0+cpu (no NVIDIA GPU here; {UNMEASURED})"),
    ("1", ["torch-2.13.0+cpu", "torch-2.14.1"],
     "torch: the package index's default build (this machine has an NVIDIA GPU)"),
    ("0", ["torch-2.14.1"],
     f"torch: the package index's default build (no NVIDIA GPU here; {UNMEASURED}, but pip finds no CPU-only "
     "torch wheel)"),
])
def test_install_picks_the_cpu_build_only_without_a_gpu_and_when_pip_can_find_one(
        tmp_path: Path, python_without_torch: str, gpu: str, wheels: list[str], plan: str) -> None:
    links = _wheels(tmp_path / "links", *wheels)
    result = _install("--plan", python=python_without_torch, PIX2PIX_NVIDIA_GPU=gpu,
                      PIX2PIX_CPU_FLAGS=UNMEASURED_FLAGS, TORCH_CPU_INDEX="http://127.0.0.1:9/whl/cpu", **_pip_env(links))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines() == [f"install.sh --plan: {plan}"]


def test_install_keeps_a_torch_that_is_already_there_unless_cuda_replaces_a_cpu_only_one(tmp_path: Path) -> None:
    links = _wheels(tmp_path / "links", "torch-2.13.0+cpu")
    keep = _install("--plan", PIX2PIX_NVIDIA_GPU="0", **_pip_env(links))
    assert keep.stdout.strip() == f"install.sh --plan: torch: the installed one stays ({torch.__version__})"
    cuda = _install("--plan", "--cuda", PIX2PIX_NVIDIA_GPU="0", **_pip_env(links))
    replacing = "" if torch.version.cuda else f" (replacing the CPU-only {torch.__version__})"
    assert cuda.stdout.strip() == f"install.sh --plan: torch: the package index's default build{replacing}"
