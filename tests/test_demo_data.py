"""The generated demo dataset: layout, determinism, alignment, learnable colours, atomic writes."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from datasets import make_demo
from datasets.make_demo import SHAPE_KINDS, ensure_demo_dataset, make_pair_image, render_pair, sample_shapes

SIZE = 48


def _halves(path: Path) -> tuple[np.ndarray, np.ndarray]:
    pair = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64) / 255
    width = pair.shape[1] // 2
    return pair[:, :width], pair[:, width:]


def test_layout_sizes_and_manifest(tmp_path: Path) -> None:
    root = ensure_demo_dataset(tmp_path / "demo", n_train=5, n_test=2, size=SIZE, seed=3)
    assert sorted(p.name for p in (root / "train").iterdir()) == [f"{i:04d}.png" for i in range(5)]
    assert len(list((root / "test").iterdir())) == 2
    for path in (root / "train").iterdir():
        image = Image.open(path)
        assert image.mode == "RGB" and image.size == (2 * SIZE, SIZE)
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["splits"] == {"train": 5, "test": 2}
    assert manifest["version"] == make_demo.DEMO_VERSION and manifest["size"] == SIZE
    # Nothing but the dataset is left beside it.
    assert [p.name for p in tmp_path.iterdir()] == ["demo"]


def test_deterministic_and_seed_dependent(tmp_path: Path) -> None:
    a = ensure_demo_dataset(tmp_path / "a", n_train=3, n_test=1, size=SIZE, seed=7)
    b = ensure_demo_dataset(tmp_path / "b", n_train=3, n_test=1, size=SIZE, seed=7)
    c = ensure_demo_dataset(tmp_path / "c", n_train=3, n_test=1, size=SIZE, seed=8)
    files = ["train/0000.png", "train/0002.png", "test/0000.png"]
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
    assert any((a / f).read_bytes() != (c / f).read_bytes() for f in files)
    # Train and test come from different streams, so they are different pictures.
    assert (a / "train/0000.png").read_bytes() != (a / "test/0000.png").read_bytes()


def test_rerun_is_a_no_op_and_changed_request_regenerates(tmp_path: Path) -> None:
    root = ensure_demo_dataset(tmp_path / "demo", n_train=2, n_test=1, size=SIZE)
    first = root / "train" / "0000.png"
    stamp = first.stat().st_mtime_ns
    first_bytes = first.read_bytes()
    ensure_demo_dataset(root, n_train=2, n_test=1, size=SIZE)
    assert first.stat().st_mtime_ns == stamp

    ensure_demo_dataset(root, n_train=4, n_test=1, size=SIZE)
    assert len(list((root / "train").iterdir())) == 4
    # Per-image seeding: growing the set keeps the images that were already there.
    assert (root / "train" / "0000.png").read_bytes() == first_bytes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]


def test_old_version_is_regenerated(tmp_path: Path) -> None:
    root = ensure_demo_dataset(tmp_path / "demo", n_train=2, n_test=1, size=SIZE)
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["version"] = make_demo.DEMO_VERSION - 1
    (root / "manifest.json").write_text(json.dumps(manifest))
    (root / "train" / "0001.png").unlink()   # an old or damaged folder
    ensure_demo_dataset(root, n_train=2, n_test=1, size=SIZE)
    assert (root / "train" / "0001.png").is_file()
    assert json.loads((root / "manifest.json").read_text())["version"] == make_demo.DEMO_VERSION


def test_interrupted_generation_leaves_nothing_half_written(tmp_path: Path, monkeypatch) -> None:
    calls = []

    def failing(seed: int, split: str, index: int, size: int) -> Image.Image:
        calls.append(index)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return make_pair_image(seed, split, index, size)

    monkeypatch.setattr(make_demo, "make_pair_image", failing)
    with pytest.raises(KeyboardInterrupt):
        ensure_demo_dataset(tmp_path / "demo", n_train=4, n_test=1, size=SIZE)
    assert list(tmp_path.iterdir()) == []


def test_interrupted_regeneration_keeps_the_old_dataset(tmp_path: Path, monkeypatch) -> None:
    root = ensure_demo_dataset(tmp_path / "demo", n_train=2, n_test=1, size=SIZE)
    monkeypatch.setattr(make_demo, "make_pair_image", lambda *args: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        ensure_demo_dataset(root, n_train=3, n_test=1, size=SIZE)
    assert json.loads((root / "manifest.json").read_text())["splits"] == {"train": 2, "test": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    grown = mask.copy()
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            grown |= np.roll(np.roll(mask, dy, 0), dx, 1)
    return grown


def test_sketch_is_black_on_white_and_aligned_with_the_shapes(tmp_path: Path) -> None:
    root = ensure_demo_dataset(tmp_path / "demo", n_train=6, n_test=0, size=64, seed=1)
    for path in sorted((root / "train").iterdir()):
        sketch, shaded = _halves(path)
        assert np.allclose(sketch[..., 0], sketch[..., 2])   # gray lines only
        ink = sketch[..., 0] < 0.5
        assert 0.01 < ink.mean() < 0.25
        assert (sketch[~_dilate(ink, 1)] > 0.95).all()   # white paper away from the lines
        # Shapes are saturated colours, background and shadows are gray.
        shape = shaded.max(axis=-1) - shaded.min(axis=-1) > 0.1
        outline_of_B = shape & ~(np.roll(shape, 1, 0) & np.roll(shape, -1, 0)
                                 & np.roll(shape, 1, 1) & np.roll(shape, -1, 1))
        assert outline_of_B.any()
        # The sketch's lines trace the shapes' outlines in B, within a pixel or two.
        assert _dilate(ink, 1)[outline_of_B].all()
        assert _dilate(outline_of_B, 2)[ink].all()


@pytest.mark.parametrize("kind", sorted(SHAPE_KINDS))
def test_colour_is_a_function_of_the_shape_kind(kind: str) -> None:
    # Find a sample with a shape of this kind, then check the shape's colour at its centre.
    for index in range(200):
        rng = np.random.default_rng([0, 0, index])
        shapes = sample_shapes(rng, 64)
        matching = [s for s in shapes if s.kind == kind]
        if matching:
            break
    else:
        pytest.fail(f"no {kind} in 200 samples")
    _, shaded = render_pair(shapes, 64)
    shape = matching[0]
    x, y = int(shape.center[0]), int(shape.center[1])
    colour = shaded[y - 1:y + 2, x - 1:x + 2].reshape(-1, 3).mean(axis=0)
    expected = np.array(SHAPE_KINDS[kind][1])
    # Shading scales the colour, so compare the direction (the hue), not the brightness.
    cosine = colour @ expected / (np.linalg.norm(colour) * np.linalg.norm(expected))
    assert cosine > 0.97, (kind, colour)
    others = [np.array(c) for k, (_, c) in SHAPE_KINDS.items() if k != kind]
    assert all(colour @ o / (np.linalg.norm(colour) * np.linalg.norm(o)) < cosine for o in others)


def test_cli_generates_and_rejects_bad_values(tmp_path: Path, capsys) -> None:
    assert make_demo.main(["--root", str(tmp_path / "d"), "--n_train", "2", "--n_test", "1",
                           "--size", "32"]) == 0
    assert (tmp_path / "d" / "train" / "0001.png").is_file()
    with pytest.raises(SystemExit) as exit_info:
        make_demo.main(["--root", str(tmp_path / "e"), "--size", "8"])
    assert exit_info.value.code == 2
    assert "--size: must be at least 32" in capsys.readouterr().err
    assert not (tmp_path / "e").exists()


def test_library_rejects_bad_counts(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="n_train"):
        ensure_demo_dataset(tmp_path / "demo", n_train=0)
