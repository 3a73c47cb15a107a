"""A read-only or full output folder for test.py, translate.py and export.py: one line naming
the file and what is wrong, a non-zero exit, no traceback, and nothing half-written.

Both are real file systems: a tmpfs mounted read-only, and a 20 KiB tmpfs that fills during
the run (the suite runs as root, who may mount; a root process is not stopped by chmod).
test.py and export.py leave the folder empty; translate.py keeps the results it finished
before the disk filled, each one whole and equal to a normal run's.
"""
from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import export
import test as test_script
import translate
from tests.test_ddp import write_pairs
from tests.test_translate import save_ours

RESNET = dict(netG="resnet_6blocks", ngf=2, norm="instance", no_dropout=True)
UNET = dict(netG="unet_256", ngf=4, norm="batch", no_dropout=False)   # export.py's tested generator
DISKS = {"read_only": ("ro", "size=1m"), "full": ("size=20k",)}
MESSAGES = {"read_only": "could not be written (Read-only file system)",
            "full": "could not be written (No space left on device)"}


@contextmanager
def tmpfs(target: Path, *options: str) -> Iterator[Path]:
    target.mkdir(parents=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join(options), "tmpfs", str(target)],
                          capture_output=True, text=True)
    assert done.returncode == 0, f"mounting a tmpfs needs root: {done.stderr.strip()}"
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("outputs")
    write_pairs(root / "pairs")
    save_ours(root / "ck" / "res", **RESNET)
    save_ours(root / "ck" / "unet", **UNET)
    assert translate.main(argv_translate(root, root / "normal")) == 0   # what a run with room writes
    return root


def argv_translate(root: Path, out: Path) -> list[str]:
    return ["--name", "res", "--checkpoints_dir", str(root / "ck"), "--gpu_ids", "-1",
            "--input", str(root / "pairs" / "test"), "--output", str(out)]


def argv_test(root: Path, out: Path) -> list[str]:
    return ["--name", "res", "--checkpoints_dir", str(root / "ck"), "--gpu_ids", "-1", "--dataroot",
            str(root / "pairs"), "--preprocess", "none", "--num_threads", "0", "--results_dir", str(out)]


def argv_export(root: Path, out: Path) -> list[str]:
    return ["--name", "unet", "--checkpoints_dir", str(root / "ck"), "--gpu_ids", "-1",
            "--output", str(out / "g.onnx")]


DRIVERS = {"test": (test_script.main, argv_test), "translate": (translate.main, argv_translate),
           "export": (export.main, argv_export)}


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


@pytest.mark.parametrize("disk", list(DISKS))
@pytest.mark.parametrize("driver", list(DRIVERS))
def test_output_folder_that_cannot_be_written(driver: str, disk: str, setup: Path, tmp_path: Path,
                                              capsys) -> None:
    main, args = DRIVERS[driver]
    with tmpfs(tmp_path / "disk", *DISKS[disk]) as mount:
        out = mount / "results"
        capsys.readouterr()
        code = main(args(setup, out))
        err = capsys.readouterr().err
        lines = err.strip().splitlines()
        assert code == 1 and len(lines) == 1 and "Traceback" not in err, err
        assert lines[0].startswith(f"{driver}.py: error: {mount}") and MESSAGES[disk] in lines[0], lines[0]
        left = files_under(mount)
        if driver != "translate" or disk == "read_only":
            assert left == [] and [p for p in mount.rglob("*")] == [], left
        else:
            # The results finished before the disk filled stay, each whole; none is partial.
            assert 0 < len(left) < len(files_under(setup / "normal")), left
            for path in left:
                assert not path.name.startswith("."), path
                with Image.open(path) as written, Image.open(setup / "normal" / path.name) as normal:
                    assert np.array_equal(np.asarray(written), np.asarray(normal)), path
