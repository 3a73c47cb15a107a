"""datasets/make_edges.py: edge maps drawn from photos, checked against shapes whose edges are
known and against the edges2shoes set's own edge maps."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from datasets import make_edges
from tests.image_files import noise_image, square_photo

SHOES = Path(__file__).resolve().parent / "fixtures" / "edges2shoes"   # real pairs, tests/fixtures/README.md


def _pair_halves(path: Path) -> tuple[np.ndarray, np.ndarray]:
    pair = np.asarray(Image.open(path).convert("RGB"))
    width = pair.shape[1] // 2
    return pair[:, :width], pair[:, width:]


def test_make_edges_draws_the_photo_outline_black_on_white(tmp_path: Path, capsys) -> None:
    square_photo(tmp_path / "photos" / "sq.png")
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
    square_photo(tmp_path / "photos" / "sq.png")
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
    square_photo(square, size=40, box=(10, 10, 30, 30))
    noise = noise_image(tmp_path / "noise.png", (40, 40), seed=0)
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
    noise_image(tmp_path / "photos" / "odd.png", (15, 8), seed=0)
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
