"""The benchmarks that read facades take --dataroot, by default datasets/facades of the clone
(where datasets/download_pix2pix_dataset.sh leaves it), and a missing folder is one line that
names the download script."""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.dataroot import ROOT, add_dataroot_option, check_dataroot
from tests.clone_env import clone_env

READERS = ("vs_reference", "profile_step", "bn_eval_modes", "same_learning", "infer_dtypes", "quality")


def test_the_default_is_the_download_scripts_folder() -> None:
    p = argparse.ArgumentParser()
    add_dataroot_option(p)
    assert p.parse_args([]).dataroot == ROOT / "datasets" / "facades"
    assert p.parse_args(["--dataroot", "x/y"]).dataroot == Path("x/y")


def test_a_missing_folder_names_the_download_script(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as stop:
        check_dataroot("bench.py", tmp_path / "facades")
    assert stop.value.code == (f"bench.py: error: --dataroot {tmp_path / 'facades'}: no such folder; get the "
                               "facades set with 'bash datasets/download_pix2pix_dataset.sh facades' (it lands in "
                               "datasets/facades) or give --dataroot")
    check_dataroot("bench.py", tmp_path)   # a folder that exists passes


def test_a_benchmark_run_without_the_set_stops_with_the_hint(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "vs_reference.py"), "--dataroot",
                           str(tmp_path / "missing")], capture_output=True, text=True, timeout=120, env=clone_env())
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "download_pix2pix_dataset.sh facades" in lines[0]


@pytest.mark.parametrize("name", READERS)
def test_each_reader_offers_dataroot_with_the_clone_default(name: str) -> None:
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / f"{name}.py"), "--help"], capture_output=True,
                          text=True, timeout=120, env=clone_env(), cwd=ROOT.parent)
    assert done.returncode == 0, done.stderr
    assert "--dataroot" in done.stdout and "datasets/facades" in done.stdout


@pytest.mark.parametrize("flag", ["--steps", "--images"])
def test_loader_speed_refuses_zero_counts(flag: str, tmp_path: Path) -> None:
    """A rate over zero steps or images was printed as 'nan steps/s'; refused in one line before any work."""
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "loader_speed.py"), flag, "0",
                           "--dataroot", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip() == f"loader_speed.py: error: argument {flag}: must be a positive integer, got 0 (see --help)"
