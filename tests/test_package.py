"""The project as a package (pyproject.toml): it builds and installs, and its console scripts
run the drivers from outside the clone, with nothing but the installed files.

The install goes into a folder of its own (``pip install --target``, no dependencies: they are
in the environment running the tests), from a copy of the clone, so the clone gets no build
folders; the scripts then run with that folder as their only source of the project.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.test_ddp import SIDE, train_args, write_pairs

ROOT = Path(__file__).resolve().parents[1]
DRIVERS = ("train", "test", "translate", "serve", "export")
# What a clone holds besides the source: environments, outputs, data sets, caches.
NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", "__pycache__", "build", "*.egg-info", "checkpoints", "results",
                                    "runs", "facades", "edges2shoes*", "demo", ".pytest_cache")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("package")
    source, target = work / "source", work / "site"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                    "--target", str(target), str(source)], check=True, timeout=300)
    return target


def run_script(site: Path, name: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # Only the installed copy on the path; the clone is neither the working folder nor on PYTHONPATH.
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run([str(site / "bin" / name), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.parametrize("driver", DRIVERS)
def test_each_console_script_shows_its_drivers_help(installed: Path, tmp_path: Path, driver: str) -> None:
    done = run_script(installed, f"pix2pix-{driver}", "--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    # The driver's own parser: test.py's, not Python's test package, for pix2pix-test.
    assert done.stdout.startswith(f"usage: {driver}.py"), done.stdout[:200]
    assert "--name" in done.stdout


def test_compare_script_shows_its_help(installed: Path, tmp_path: Path) -> None:
    done = run_script(installed, "pix2pix-compare", "--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: compare.py") and "--results_dir" in done.stdout


def test_train_then_translate_through_the_installed_scripts(installed: Path, tmp_path: Path) -> None:
    data = write_pairs(tmp_path / "pairs")
    ckpt = tmp_path / "checkpoints"
    trained = run_script(installed, "pix2pix-train", *train_args(data, ckpt, "pkg", "--batch_size", "4",
                                                                 "--n_epochs", "1"), cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr[-2000:]
    assert (ckpt / "pkg" / "latest_net_G.pt").is_file()

    (tmp_path / "in").mkdir()
    Image.new("RGB", (SIDE + 8, SIDE), (120, 40, 200)).save(tmp_path / "in" / "photo.jpg")
    translated = run_script(installed, "pix2pix-translate", "--checkpoints_dir", str(ckpt), "--name", "pkg",
                            "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"), cwd=tmp_path)
    assert translated.returncode == 0, translated.stderr[-2000:]
    with Image.open(tmp_path / "out" / "photo.png") as result:
        assert result.size == (SIDE + 8, SIDE)   # each result has its input's size


def test_a_user_error_through_a_script_is_one_line(installed: Path, tmp_path: Path) -> None:
    done = run_script(installed, "pix2pix-export", "--checkpoints_dir", str(tmp_path), "--name", "none",
                      cwd=tmp_path)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("export.py: error:") and "none" in lines[0]
