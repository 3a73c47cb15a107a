"""Tiny generated aligned datasets and command lines for end-to-end tests of the drivers."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

# A few real facades pairs kept in the repository (tests/fixtures/README.md), so the real-image
# tests run from a fresh clone: train/ 4 pairs, test/ 3.
FIXTURE_FACADES = Path(__file__).resolve().parent / "fixtures" / "facades"


def make_aligned_dataset(root: Path, counts: dict[str, int], size: int = 32, seed: int = 0) -> Path:
    """A|B images where B is a pixel-wise function of A (its negative), so a model can learn it
    and any misalignment shows."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    for phase, n in counts.items():
        (root / phase).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            a = np.stack([(xx * 255 // size + rng.integers(0, 60)) % 256,
                          (yy * 255 // size + rng.integers(0, 60)) % 256,
                          np.full_like(xx, rng.integers(0, 256))], axis=-1).astype(np.uint8)
            b = 255 - a
            Image.fromarray(np.concatenate([a, b], axis=1)).save(root / phase / f"{i:03d}.png")
    return root


def tiny_args(dataroot: Path, checkpoints: Path, name: str = "tiny") -> list[str]:
    """A network and schedule small enough for a few steps in about a second."""
    return ["--dataroot", str(dataroot), "--checkpoints_dir", str(checkpoints), "--name", name,
            "--netG", "resnet_6blocks", "--ngf", "4", "--ndf", "4", "--load_size", "32", "--crop_size", "32",
            "--num_threads", "0", "--display_id", "0", "--gpu_ids", "-1"]


def train_tiny_run(root: Path, test_images: int) -> tuple[Path, Path]:
    """Train 2 steps of the tiny configuration on a generated set with 2 training pairs and
    ``test_images`` test pairs under ``root``; returns (dataroot, checkpoints_dir)."""
    import train as train_driver   # the driver, only where a test asks for a trained run

    data = make_aligned_dataset(root / "data", {"train": 2, "test": test_images})
    assert train_driver.main(tiny_args(data, root / "ck") + ["--max_steps", "2"]) == 0
    return data, root / "ck"


def without(args: list[str], *flags: str) -> list[str]:
    """``args`` less each of ``flags`` and its value."""
    out, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg in flags:
            skip = True
        else:
            out.append(arg)
    return out


def assert_same(a, b, where: str = "") -> None:
    """Nested dicts, lists, tensors and arrays equal exactly; ``where`` names the first difference."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    elif torch.is_tensor(a):
        assert torch.equal(a, b), where
    elif isinstance(a, np.ndarray):
        assert np.array_equal(a, b), where
    else:
        assert a == b, where
