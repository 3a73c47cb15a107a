"""The datasets/ command-line tools combine_A_and_B.py and download_pix2pix_dataset.sh
(make_edges.py: tests/test_make_edges.py)."""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import threading
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
from PIL import Image

from datasets import combine_A_and_B
from tests.clone_env import clone_env
from tests.image_files import noise_image
from tests.shard_helpers import serve_folder

REPO = Path(__file__).resolve().parents[1]
DOWNLOAD_SCRIPT = REPO / "datasets" / "download_pix2pix_dataset.sh"


# --------------------------------------------------------------------------- combine_A_and_B


def _run_combine(capsys, *args: str) -> tuple[int, str]:
    code = combine_A_and_B.main([*args, "--no_multiprocessing"])
    return code, capsys.readouterr().err


def test_combine_splits_into_aligned_pairs(tmp_path: Path, capsys) -> None:
    expected = {}
    for split, names in {"train": ["1", "2"], "val": ["3"]}.items():
        for i, name in enumerate(names):
            a = noise_image(tmp_path / "A" / split / f"{name}.png", (20, 12), seed=i)
            b = noise_image(tmp_path / "B" / split / f"{name}.png", (20, 12), seed=100 + i)
            expected[(split, name)] = (a, b)
    code, err = _run_combine(capsys, "--fold_A", str(tmp_path / "A"), "--fold_B", str(tmp_path / "B"),
                             "--fold_AB", str(tmp_path / "AB"))
    assert code == 0, err
    for (split, name), (a, b) in expected.items():
        pair = np.asarray(Image.open(tmp_path / "AB" / split / f"{name}.png"))
        assert pair.shape == (12, 40, 3)
        assert (pair[:, :20] == a).all() and (pair[:, 20:] == b).all()


def test_combine_flat_folders_num_imgs_and_multiprocessing(tmp_path: Path, capsys) -> None:
    for i in range(4):
        noise_image(tmp_path / "A" / f"{i}.png", (8, 8), seed=i, mode="L")
        noise_image(tmp_path / "B" / f"{i}.jpg", (8, 8), seed=i)   # gray A with colour B, other format
    code = combine_A_and_B.main(["--fold_A", str(tmp_path / "A"), "--fold_B", str(tmp_path / "B"),
                                 "--fold_AB", str(tmp_path / "AB"), "--num_imgs", "3"])
    assert code == 0, capsys.readouterr().err
    written = sorted(p.name for p in (tmp_path / "AB").iterdir())
    assert written == ["0.png", "1.png", "2.png"]   # no split folder, A's names, first 3
    assert Image.open(tmp_path / "AB" / "0.png").mode == "RGB"
    assert Image.open(tmp_path / "AB" / "0.png").size == (16, 8)


def test_combine_converts_16_bit_and_palette_to_rgb(tmp_path: Path, capsys) -> None:
    (tmp_path / "A").mkdir()
    (tmp_path / "B").mkdir()
    Image.fromarray(np.full((4, 4), 40000, dtype=np.uint16)).save(tmp_path / "A" / "x.png")
    palette = Image.new("P", (4, 4), 0)
    palette.putpalette([10, 200, 30] + [0] * 765)
    palette.save(tmp_path / "B" / "x.png")
    code, err = _run_combine(capsys, "--fold_A", str(tmp_path / "A"), "--fold_B", str(tmp_path / "B"),
                             "--fold_AB", str(tmp_path / "AB"))
    assert code == 0, err
    pair = Image.open(tmp_path / "AB" / "x.png")
    assert pair.mode == "RGB"
    assert pair.getpixel((0, 0)) == (156, 156, 156) and pair.getpixel((4, 0)) == (10, 200, 30)


def test_combine_use_AB_in_one_folder(tmp_path: Path, capsys) -> None:
    a = noise_image(tmp_path / "both" / "train" / "x_A.png", (6, 6), seed=1)
    b = noise_image(tmp_path / "both" / "train" / "x_B.png", (6, 6), seed=2)
    both = str(tmp_path / "both")
    code, err = _run_combine(capsys, "--fold_A", both, "--fold_B", both, "--fold_AB", str(tmp_path / "AB"),
                             "--use_AB")
    assert code == 0, err
    pair = np.asarray(Image.open(tmp_path / "AB" / "train" / "x.png"))
    assert (pair[:, :6] == a).all() and (pair[:, 6:] == b).all()


def test_combine_size_mismatch_names_both_files(tmp_path: Path, capsys) -> None:
    noise_image(tmp_path / "A" / "train" / "1.png", (16, 16), seed=0)
    noise_image(tmp_path / "B" / "train" / "1.png", (16, 12), seed=0)
    code, err = _run_combine(capsys, "--fold_A", str(tmp_path / "A"), "--fold_B", str(tmp_path / "B"),
                             "--fold_AB", str(tmp_path / "AB"))
    assert code == 1
    assert err.count("\n") == 1 and "size mismatch" in err
    assert "A/train/1.png is 16x16" in err and "B/train/1.png is 16x12" in err
    assert not (tmp_path / "AB").exists()   # checked before anything is written


def test_combine_unmatched_names_are_listed(tmp_path: Path, capsys) -> None:
    for i in range(8):
        noise_image(tmp_path / "A" / f"a{i}.png", (4, 4), seed=i)
    noise_image(tmp_path / "B" / "a0.png", (4, 4), seed=0)
    code, err = _run_combine(capsys, "--fold_A", str(tmp_path / "A"), "--fold_B", str(tmp_path / "B"),
                             "--fold_AB", str(tmp_path / "AB"))
    assert code == 1 and err.count("\n") == 1
    assert "7 image(s)" in err and "a1.png, a2.png" in err and "and 2 more" in err


def test_combine_recurses_into_subfolders_and_mirrors_them(tmp_path: Path, capsys) -> None:
    names = ["1", "day/2", "day/dusk/3"]
    pixels = {}
    for i, name in enumerate(names):
        for side in "AB":
            pixels[side, name] = noise_image(tmp_path / side / "train" / f"{name}.png", (4, 3), seed=2 * i + (side == "B"))
    (tmp_path / "A" / "train" / "day" / "Thumbs.db").write_bytes(b"junk")
    code, err = _run_combine(capsys, "--fold_A", str(tmp_path / "A"), "--fold_B", str(tmp_path / "B"),
                             "--fold_AB", str(tmp_path / "AB"))
    assert code == 0, err
    written = sorted(str(p.relative_to(tmp_path / "AB")) for p in (tmp_path / "AB").rglob("*.png"))
    assert written == sorted(f"train/{name}.png" for name in names)
    for name in names:
        combined = np.asarray(Image.open(tmp_path / "AB" / "train" / f"{name}.png"))
        assert np.array_equal(combined, np.concatenate([pixels["A", name], pixels["B", name]], axis=1))


def test_combine_names_an_unmatched_file_in_a_subfolder(tmp_path: Path, capsys) -> None:
    noise_image(tmp_path / "A" / "train" / "day" / "1.png", (4, 4), seed=0)
    noise_image(tmp_path / "B" / "train" / "1.png", (4, 4), seed=0)
    code, err = _run_combine(capsys, "--fold_A", str(tmp_path / "A"), "--fold_B", str(tmp_path / "B"),
                             "--fold_AB", str(tmp_path / "AB"))
    assert code == 1 and err.count("\n") == 1 and "day/1.png" in err


@pytest.mark.parametrize("case", ["missing_fold_B", "missing_split", "image_and_folders", "not_an_image"])
def test_combine_bad_layouts_give_one_line(tmp_path: Path, capsys, case: str) -> None:
    noise_image(tmp_path / "A" / "train" / "1.png", (4, 4), seed=0)
    if case != "missing_fold_B":
        noise_image(tmp_path / "B" / "train" / "1.png", (4, 4), seed=0)
    if case == "missing_split":
        noise_image(tmp_path / "A" / "test" / "2.png", (4, 4), seed=0)
    if case == "image_and_folders":
        noise_image(tmp_path / "A" / "stray.png", (4, 4), seed=0)
    if case == "not_an_image":
        (tmp_path / "B" / "train" / "1.png").write_bytes(b"not a png")
    code, err = _run_combine(capsys, "--fold_A", str(tmp_path / "A"), "--fold_B", str(tmp_path / "B"),
                             "--fold_AB", str(tmp_path / "AB"))
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err
    expected = {"missing_fold_B": "--fold_B", "missing_split": "B/test is not a folder",
                "image_and_folders": "both images and subfolders", "not_an_image": "B/train/1.png"}[case]
    assert expected in err


def test_combine_as_a_script_prints_no_traceback(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, str(REPO / "datasets" / "combine_A_and_B.py"),
                             "--fold_A", str(tmp_path / "nope"), "--fold_B", str(tmp_path),
                             "--fold_AB", str(tmp_path / "AB")], capture_output=True, text=True, timeout=60,
                            env=clone_env())
    assert result.returncode == 1
    assert result.stderr.strip() == f"combine_A_and_B: error: --fold_A {tmp_path / 'nope'} is not a folder"


# --------------------------------------------------------------------------- download script

needs_bash = pytest.mark.skipif(shutil.which("bash") is None or shutil.which("tar") is None,
                                reason="needs bash and tar")


def _download(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PIX2PIX_DATASETS_DIR": str(tmp_path / "datasets"),
                   "PIX2PIX_CONNECT_TIMEOUT": "1", **env}
    return subprocess.run(["bash", str(DOWNLOAD_SCRIPT), *args], capture_output=True, text=True,
                          env=environment, timeout=60)


@needs_bash
@pytest.mark.parametrize("args", [("cats",), (), ("facades", "maps")])
def test_download_bad_name_prints_the_valid_ones(tmp_path: Path, args: tuple[str, ...]) -> None:
    result = _download(tmp_path, *args)
    assert result.returncode == 2
    assert "facades cityscapes maps edges2shoes edges2handbags night2day" in result.stderr
    if args == ("cats",):
        assert "unknown dataset 'cats'" in result.stderr
    assert not (tmp_path / "datasets").exists()


@contextlib.contextmanager
def _hanging_up_server() -> Iterator[str]:
    """A port that takes the connection and closes it without an answer (as a dropped link or a
    dead server does; an unroutable address is no test here, where a proxy answers every one)."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                listener.accept()[0].close()
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        listener.close()


@needs_bash
@pytest.mark.parametrize("server", ["refused",    # nothing listens: refused at once
                                    "hangs_up"])  # connected, no answer
def test_download_without_network_says_so(tmp_path: Path, server: str) -> None:
    with (_hanging_up_server() if server == "hangs_up" else contextlib.nullcontext("http://127.0.0.1:9")) as base_url:
        result = _download(tmp_path, "facades", PIX2PIX_DATASETS_URL=base_url)
    assert result.returncode == 1
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("download_pix2pix_dataset: error: could not download")
    assert f"{base_url}/facades.tar.gz" in last_line and "network" in last_line
    assert list((tmp_path / "datasets").iterdir()) == []   # no partial folder, no temp file


@needs_bash
@pytest.mark.skipif(shutil.which("curl") is None and shutil.which("wget") is None, reason="needs curl or wget")
def test_download_wrong_url_is_not_called_a_network_problem(tmp_path: Path) -> None:
    """A server that answers 404 (a wrong mirror) is reachable: the line says what it answered."""
    (tmp_path / "empty").mkdir()
    with serve_folder(tmp_path / "empty") as base_url:
        result = _download(tmp_path, "facades", PIX2PIX_DATASETS_URL=base_url)
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()   # one line: curl's own message is not printed
    assert line.startswith("download_pix2pix_dataset: error: the server answered")
    assert f"{base_url}/facades.tar.gz" in line and "HTTP 404" in line and "PIX2PIX_DATASETS_URL" in line
    assert "network" not in line
    assert list((tmp_path / "datasets").iterdir()) == []


def _archive(tmp_path: Path, name: str, corrupt: bool = False) -> str:
    server = tmp_path / "server"
    server.mkdir()
    content = tmp_path / "content" / name / "train"
    noise_image(content / "1.jpg", (8, 4), seed=0)
    archive = server / f"{name}.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(content.parent, arcname=name)
    if corrupt:   # an interrupted download
        archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    return f"file://{server}"


@needs_bash
@pytest.mark.skipif(shutil.which("curl") is None, reason="file:// URLs need curl")
def test_download_extracts_into_datasets_name(tmp_path: Path) -> None:
    result = _download(tmp_path, "maps", PIX2PIX_DATASETS_URL=_archive(tmp_path, "maps"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "datasets" / "maps" / "train" / "1.jpg").is_file()
    assert [p.name for p in (tmp_path / "datasets").iterdir()] == ["maps"]
    again = _download(tmp_path, "maps", PIX2PIX_DATASETS_URL="http://127.0.0.1:9")
    assert again.returncode == 0 and "already exists" in again.stdout


@needs_bash
@pytest.mark.skipif(shutil.which("curl") is None, reason="file:// URLs need curl")
def test_download_broken_archive_leaves_nothing(tmp_path: Path) -> None:
    result = _download(tmp_path, "maps", PIX2PIX_DATASETS_URL=_archive(tmp_path, "maps", corrupt=True))
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()   # tar's and gzip's lines folded into it
    assert "did not give a valid .tar.gz" in line
    assert list((tmp_path / "datasets").iterdir()) == []
