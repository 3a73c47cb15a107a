"""The datasets/ command-line tools: combine_A_and_B.py, download_pix2pix_dataset.sh, make_edges.py."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from datasets import combine_A_and_B, make_edges
from tests.clone_env import clone_env

REPO = Path(__file__).resolve().parents[1]
DOWNLOAD_SCRIPT = REPO / "datasets" / "download_pix2pix_dataset.sh"
SHOES = REPO / "tests" / "fixtures" / "edges2shoes"   # real pairs, tests/fixtures/README.md


def _noise(path: Path, size: tuple[int, int], seed: int, mode: str = "RGB") -> np.ndarray:
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "L": 1}[mode]
    pixels = rng.integers(0, 256, size=(size[1], size[0], channels), dtype=np.uint8).squeeze()
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels, mode=mode).save(path)
    return pixels


def _square_photo(path: Path, size: int = 48, box: tuple[int, int, int, int] = (12, 12, 36, 36)) -> None:
    """A dark square on a light background: its edges are known exactly."""
    pixels = np.full((size, size, 3), 220, dtype=np.uint8)
    x0, y0, x1, y1 = box
    pixels[y0:y1, x0:x1] = (30, 60, 120)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


# --------------------------------------------------------------------------- combine_A_and_B


def _run_combine(capsys, *args: str) -> tuple[int, str]:
    code = combine_A_and_B.main([*args, "--no_multiprocessing"])
    return code, capsys.readouterr().err


def test_combine_splits_into_aligned_pairs(tmp_path: Path, capsys) -> None:
    expected = {}
    for split, names in {"train": ["1", "2"], "val": ["3"]}.items():
        for i, name in enumerate(names):
            a = _noise(tmp_path / "A" / split / f"{name}.png", (20, 12), seed=i)
            b = _noise(tmp_path / "B" / split / f"{name}.png", (20, 12), seed=100 + i)
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
        _noise(tmp_path / "A" / f"{i}.png", (8, 8), seed=i, mode="L")
        _noise(tmp_path / "B" / f"{i}.jpg", (8, 8), seed=i)   # gray A with colour B, other format
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
    a = _noise(tmp_path / "both" / "train" / "x_A.png", (6, 6), seed=1)
    b = _noise(tmp_path / "both" / "train" / "x_B.png", (6, 6), seed=2)
    both = str(tmp_path / "both")
    code, err = _run_combine(capsys, "--fold_A", both, "--fold_B", both, "--fold_AB", str(tmp_path / "AB"),
                             "--use_AB")
    assert code == 0, err
    pair = np.asarray(Image.open(tmp_path / "AB" / "train" / "x.png"))
    assert (pair[:, :6] == a).all() and (pair[:, 6:] == b).all()


def test_combine_size_mismatch_names_both_files(tmp_path: Path, capsys) -> None:
    _noise(tmp_path / "A" / "train" / "1.png", (16, 16), seed=0)
    _noise(tmp_path / "B" / "train" / "1.png", (16, 12), seed=0)
    code, err = _run_combine(capsys, "--fold_A", str(tmp_path / "A"), "--fold_B", str(tmp_path / "B"),
                             "--fold_AB", str(tmp_path / "AB"))
    assert code == 1
    assert err.count("\n") == 1 and "size mismatch" in err
    assert "A/train/1.png is 16x16" in err and "B/train/1.png is 16x12" in err
    assert not (tmp_path / "AB").exists()   # checked before anything is written


def test_combine_unmatched_names_are_listed(tmp_path: Path, capsys) -> None:
    for i in range(8):
        _noise(tmp_path / "A" / f"a{i}.png", (4, 4), seed=i)
    _noise(tmp_path / "B" / "a0.png", (4, 4), seed=0)
    code, err = _run_combine(capsys, "--fold_A", str(tmp_path / "A"), "--fold_B", str(tmp_path / "B"),
                             "--fold_AB", str(tmp_path / "AB"))
    assert code == 1 and err.count("\n") == 1
    assert "7 image(s)" in err and "a1.png, a2.png" in err and "and 2 more" in err


@pytest.mark.parametrize("case", ["missing_fold_B", "missing_split", "image_and_folders", "not_an_image"])
def test_combine_bad_layouts_give_one_line(tmp_path: Path, capsys, case: str) -> None:
    _noise(tmp_path / "A" / "train" / "1.png", (4, 4), seed=0)
    if case != "missing_fold_B":
        _noise(tmp_path / "B" / "train" / "1.png", (4, 4), seed=0)
    if case == "missing_split":
        _noise(tmp_path / "A" / "test" / "2.png", (4, 4), seed=0)
    if case == "image_and_folders":
        _noise(tmp_path / "A" / "stray.png", (4, 4), seed=0)
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


@needs_bash
@pytest.mark.parametrize("base_url", ["http://127.0.0.1:9",        # nothing listens: refused at once
                                      "http://10.255.255.1:81"])   # unroutable: the connect timeout
def test_download_without_network_says_so(tmp_path: Path, base_url: str) -> None:
    result = _download(tmp_path, "facades", PIX2PIX_DATASETS_URL=base_url)
    assert result.returncode == 1
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("download_pix2pix_dataset: error: could not download")
    assert f"{base_url}/facades.tar.gz" in last_line and "network" in last_line
    assert list((tmp_path / "datasets").iterdir()) == []   # no partial folder, no temp file


def _archive(tmp_path: Path, name: str, corrupt: bool = False) -> str:
    server = tmp_path / "server"
    server.mkdir()
    content = tmp_path / "content" / name / "train"
    _noise(content / "1.jpg", (8, 4), seed=0)
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
    assert "did not give a valid .tar.gz" in result.stderr.strip().splitlines()[-1]
    assert list((tmp_path / "datasets").iterdir()) == []


# --------------------------------------------------------------------------- make_edges


def _pair_halves(path: Path) -> tuple[np.ndarray, np.ndarray]:
    pair = np.asarray(Image.open(path).convert("RGB"))
    width = pair.shape[1] // 2
    return pair[:, :width], pair[:, width:]


def test_make_edges_draws_the_photo_outline_black_on_white(tmp_path: Path, capsys) -> None:
    _square_photo(tmp_path / "photos" / "sq.png")
    code = make_edges.main(["--input", str(tmp_path / "photos"), "--output", str(tmp_path / "out"),
                            "--sigma", "1"])
    assert code == 0, capsys.readouterr().err
    edges, photo = _pair_halves(tmp_path / "out" / "train" / "sq.png")   # flat input -> train split
    assert edges.shape == photo.shape == (48, 48, 3)
    assert (photo == np.asarray(Image.open(tmp_path / "photos" / "sq.png"))).all()
    ink = edges[..., 0] < 128
    assert set(np.unique(edges)) <= {0, 255}
    # The lines follow the square's border (12..36) and nothing else: not the image frame,
    # not the flat inside.
    ys, xs = np.nonzero(ink)
    assert ink.any() and ys.min() >= 9 and ys.max() <= 38 and xs.min() >= 9 and xs.max() <= 38
    assert not ink[18:30, 18:30].any()
    for side in (ink[:, 10:14], ink[:, 34:38], ink[10:14, :], ink[34:38, :]):
        assert side.any()


def test_make_edges_thickness_and_invert(tmp_path: Path, capsys) -> None:
    _square_photo(tmp_path / "photos" / "sq.png")
    coverage = {}
    for thickness in (1, 3):
        out = tmp_path / f"out{thickness}"
        assert make_edges.main(["--input", str(tmp_path / "photos"), "--output", str(out),
                                "--thickness", str(thickness)]) == 0
        edges, _ = _pair_halves(out / "train" / "sq.png")
        coverage[thickness] = (edges[..., 0] < 128).mean()
    assert coverage[3] > 2 * coverage[1] > 0
    assert make_edges.main(["--input", str(tmp_path / "photos"), "--output", str(tmp_path / "white"),
                            "--thickness", "3", "--no-invert"]) == 0
    edges, _ = _pair_halves(tmp_path / "white" / "train" / "sq.png")
    assert (edges[..., 0] > 128).mean() == pytest.approx(coverage[3])   # same lines, white on black


@pytest.mark.parametrize("photo_half", ["A", "B"])
def test_make_edges_from_aligned_with_splits_and_resize(tmp_path: Path, capsys, photo_half: str) -> None:
    # An aligned image with the square photo in one half and noise in the other.
    square = tmp_path / "square.png"
    _square_photo(square, size=40, box=(10, 10, 30, 30))
    noise = _noise(tmp_path / "noise.png", (40, 40), seed=0)
    halves = [np.asarray(Image.open(square)), noise]
    if photo_half == "B":
        halves.reverse()
    for split in ("train", "val"):
        path = tmp_path / "aligned" / split / "p.jpg"
        path.parent.mkdir(parents=True)
        Image.fromarray(np.concatenate(halves, axis=1)).save(path, quality=100)
    code = make_edges.main(["--input", str(tmp_path / "aligned"), "--output", str(tmp_path / "out"),
                            "--from_aligned", "--photo_half", photo_half, "--size", "32"])
    assert code == 0, capsys.readouterr().err
    for split in ("train", "val"):
        pair = Image.open(tmp_path / "out" / split / "p.png")
        assert pair.size == (64, 32)
        edges, photo = _pair_halves(tmp_path / "out" / split / "p.png")
        # The photo half is the square (light corners, dark centre), not the noise.
        assert photo[1, 1].min() > 180 and photo[16, 16, 0] < 80
        assert (edges[..., 0] < 128).any() and not (edges[12:20, 12:20, 0] < 128).any()


@pytest.mark.parametrize("args, message", [
    (["--from_aligned"], "odd width"),
    (["--low_threshold", "0.5", "--high_threshold", "0.2"], "--low_threshold 0.5 is above"),
    (["--use_quantiles", "--high_threshold", "2"], "between 0 and 1"),
])
def test_make_edges_bad_input_one_line(tmp_path: Path, capsys, args: list[str], message: str) -> None:
    _noise(tmp_path / "photos" / "odd.png", (15, 8), seed=0)
    code = make_edges.main(["--input", str(tmp_path / "photos"), "--output", str(tmp_path / "out"), *args])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and message in err
    if "odd" in message:
        assert "odd.png" in err


def test_make_edges_missing_or_empty_input(tmp_path: Path, capsys) -> None:
    assert make_edges.main(["--input", str(tmp_path / "nope"), "--output", str(tmp_path / "out")]) == 1
    assert "--input" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert make_edges.main(["--input", str(tmp_path / "empty"), "--output", str(tmp_path / "out")]) == 1
    assert "no images in" in capsys.readouterr().err


def test_make_edges_handles_transparency_and_16_bit(tmp_path: Path) -> None:
    rgba = np.zeros((16, 16, 4), dtype=np.uint8)
    rgba[4:12, 4:12] = (200, 30, 30, 255)   # an opaque red square on a transparent background
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "cutout.png")
    photo = make_edges.load_photo(tmp_path / "cutout.png")
    assert photo.mode == "RGB" and photo.getpixel((0, 0)) == (255, 255, 255)
    deep = Image.fromarray(np.full((8, 8), 40000, dtype=np.uint16))
    deep.save(tmp_path / "deep.png")
    assert make_edges.load_photo(tmp_path / "deep.png").getpixel((0, 0)) == (156, 156, 156)


def test_make_edges_on_real_shoe_photos_matches_the_sets_own_edges(tmp_path: Path) -> None:
    """Canny edges of real shoe photos land where the set's own (HED) edges are, and vice versa."""
    source = tmp_path / "shoes"
    source.mkdir()
    for path in sorted((SHOES / "train").iterdir())[:2]:
        shutil.copy(path, source / path.name)
    assert make_edges.main(["--input", str(source), "--output", str(tmp_path / "out"),
                            "--from_aligned", "--size", "128"]) == 0
    for path in sorted(source.iterdir()):
        edges, photo = _pair_halves(tmp_path / "out" / "train" / f"{path.stem}.png")
        assert edges.shape == photo.shape == (128, 128, 3)
        ink = edges[..., 0] < 128
        # The set's A half: thin dark HED lines on white.
        reference = np.asarray(Image.open(path).convert("L").resize((256, 128)))[:, :128] < 200
        assert 0.01 < ink.mean() < 0.3
        assert ndimage.binary_dilation(reference, iterations=3)[ink].mean() > 0.6
        assert ndimage.binary_dilation(ink, iterations=3)[reference].mean() > 0.6
