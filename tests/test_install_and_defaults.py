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


def _install(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "install.sh", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHON": sys.executable, **env}, timeout=120)


def test_install_sh_rejects_an_unknown_option_in_one_line() -> None:
    result = _install("--gpu")
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        "install.sh: unknown option '--gpu' (use --cpu, --force)"]


def test_install_cpu_route_says_in_one_line_when_its_index_cannot_be_reached() -> None:
    result = _install("--cpu", "--force", TORCH_CPU_INDEX="http://127.0.0.1:9/whl/cpu")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "install.sh: --cpu: PyTorch's CPU wheel index http://127.0.0.1:9/whl/cpu cannot be reached "
        "(set TORCH_CPU_INDEX to a mirror, or install without --cpu)"]
