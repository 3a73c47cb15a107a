"""The built-in demo dataset: line sketches of simple shapes -> the same shapes filled and shaded.

Every image is generated from a seed with numpy, so the repository ships no third-party images
and two machines get byte-identical data. Each file is an aligned pair, A (sketch) on the left
and B (shaded shapes) on the right, like the pix2pix sets:

    <root>/train/0000.png ... <root>/test/0000.png, <root>/manifest.json

The mapping is meant to be learnable by a small U-Net in a few CPU minutes: the colour of a
shape depends only on its kind (which the outline shows), the light always comes from the
upper left, and the shapes never overlap, so every sketch pixel has one right answer.

Shapes are drawn from signed distance fields (negative inside): the same field gives the
anti-aliased outline in A, the fill, a bevelled height map for the shading, and the shadow in B,
so the two halves are aligned by construction.

CLI: ``python -m datasets.make_demo [--root DIR] [--n_train N] [--n_test N] [--size PX] [--seed S]``
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image

from util.argtypes import int_range

logger = logging.getLogger(__name__)

# Bump whenever the pictures change, so existing demo folders are regenerated.
DEMO_VERSION = 1
DEFAULT_ROOT = Path(__file__).resolve().parent / "demo"
MANIFEST = "manifest.json"
# Each split draws from its own random stream, so changing --n_train leaves test images as they were.
SPLIT_STREAMS = {"train": 0, "test": 1}

BACKGROUND = np.array([0.93, 0.92, 0.89])
INK = 0.05
# Light from the upper left and somewhat towards the viewer (image y grows downwards).
LIGHT = np.array([-0.55, -0.6, 0.58]) / np.linalg.norm([-0.55, -0.6, 0.58])
HALF_VECTOR = (LIGHT + np.array([0.0, 0.0, 1.0])) / np.linalg.norm(LIGHT + np.array([0.0, 0.0, 1.0]))

# A signed distance field: pixel coordinates (x, y) -> distance in px, negative inside.
Field = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Shape:
    kind: str
    center: tuple[float, float]
    radius: float          # bounding radius, used to place shapes without overlap
    field: Field           # signed distance around the origin; shifted by `center` when drawn
    bevel: float           # width of the rounded rim used for shading, px


def _rotate(x: np.ndarray, y: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    c, s = np.cos(angle), np.sin(angle)
    return c * x + s * y, -s * x + c * y


def _polygon_field(vertices: np.ndarray) -> Field:
    """Exact distance to a convex polygon (vertices in counter-clockwise screen order or not)."""
    def field(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        distance = np.full(x.shape, np.inf)
        sides = []
        for (ax, ay), (bx, by) in zip(vertices, np.roll(vertices, -1, axis=0)):
            ex, ey = bx - ax, by - ay
            px, py = x - ax, y - ay
            t = np.clip((px * ex + py * ey) / (ex * ex + ey * ey), 0.0, 1.0)
            distance = np.minimum(distance, np.hypot(px - t * ex, py - t * ey))
            sides.append(ex * py - ey * px >= 0)
        # Inside a convex polygon the point is on the same side of every edge.
        inside = np.logical_and.reduce(sides) | np.logical_and.reduce([~s for s in sides])
        return np.where(inside, -distance, distance)
    return field


def _circle(rng: np.random.Generator, radius: float) -> tuple[Field, float]:
    return (lambda x, y: np.hypot(x, y) - radius), radius


def _ellipse(rng: np.random.Generator, radius: float) -> tuple[Field, float]:
    a, b = radius, radius * rng.uniform(0.45, 0.62)   # flat enough never to pass for a circle
    angle = rng.uniform(0.0, np.pi)

    def field(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        u, v = _rotate(x, y, angle)
        # First-order distance to an ellipse: exact on the curve, which is all the outline and
        # the anti-aliasing need; inside it only shapes the shading rim.
        k0 = np.hypot(u / a, v / b)
        k1 = np.hypot(u / (a * a), v / (b * b)) + 1e-9
        return k0 * (k0 - 1.0) / k1
    return field, b


def _rectangle(rng: np.random.Generator, radius: float) -> tuple[Field, float]:
    aspect = rng.uniform(1.0, 1.7)
    half_w = radius / np.sqrt(1.0 + 1.0 / aspect**2)
    half_h = half_w / aspect
    corners = np.array([[-half_w, -half_h], [half_w, -half_h], [half_w, half_h], [-half_w, half_h]])
    angle = rng.uniform(-0.4, 0.4)
    c, s = np.cos(angle), np.sin(angle)
    return _polygon_field(corners @ np.array([[c, s], [-s, c]])), 0.5 * half_h


def _triangle(rng: np.random.Generator, radius: float) -> tuple[Field, float]:
    start = rng.uniform(0.0, 2.0 * np.pi)
    angles = start + np.array([0.0, 2.0, 4.0]) * np.pi / 3 + rng.uniform(-0.2, 0.2, size=3)
    vertices = radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return _polygon_field(vertices), 0.28 * radius


# kind -> (sampler of a centred field and its bevel, colour). The colour is a function of the
# kind alone, which is what makes sketch -> colour learnable.
SHAPE_KINDS: dict[str, tuple[Callable[[np.random.Generator, float], tuple[Field, float]], tuple[float, float, float]]] = {
    "circle": (_circle, (0.86, 0.18, 0.14)),
    "ellipse": (_ellipse, (0.96, 0.68, 0.08)),
    "rectangle": (_rectangle, (0.14, 0.34, 0.86)),
    "triangle": (_triangle, (0.16, 0.64, 0.24)),
}


def sample_shapes(rng: np.random.Generator, size: int) -> list[Shape]:
    """1-3 shapes of random kinds that neither overlap nor touch the border."""
    scale = size / 128
    gap, margin = 6 * scale, 5 * scale
    shapes: list[Shape] = []
    for _ in range(int(rng.integers(1, 4))):
        kind = str(rng.choice(list(SHAPE_KINDS)))
        radius = rng.uniform(15, 30) * scale
        field, bevel = SHAPE_KINDS[kind][0](rng, radius)
        for _attempt in range(30):
            center = rng.uniform(radius + margin, size - radius - margin, size=2)
            if all(np.hypot(*(center - s.center)) > radius + s.radius + gap for s in shapes):
                shapes.append(Shape(kind, (float(center[0]), float(center[1])), radius, field, bevel))
                break
    return shapes


def render_pair(shapes: Sequence[Shape], size: int) -> tuple[np.ndarray, np.ndarray]:
    """(sketch, shaded) as float RGB arrays in [0, 1] of shape (size, size, 3)."""
    scale = size / 128
    y, x = np.mgrid[0:size, 0:size].astype(np.float64) + 0.5
    sketch = np.ones((size, size))
    shaded = np.broadcast_to(BACKGROUND, (size, size, 3)).copy()
    line_half_width = 1.25 * scale
    shadow_offset = np.array([3.0, 4.0]) * scale   # away from the light

    fields = [s.field(x - s.center[0], y - s.center[1]) for s in shapes]
    # Shadows first so that no shadow falls across a neighbouring shape.
    for shape in shapes:
        d = shape.field(x - shape.center[0] - shadow_offset[0], y - shape.center[1] - shadow_offset[1])
        shadow = 0.3 * np.clip(0.5 - d / (3.0 * scale), 0.0, 1.0)
        shaded *= (1.0 - shadow)[..., None]
    for shape, d in zip(shapes, fields):
        coverage = np.clip(0.5 - d, 0.0, 1.0)   # one-pixel anti-aliased edge
        colour = _shade(d, shape.bevel, np.array(SHAPE_KINDS[shape.kind][1]))
        shaded = shaded * (1.0 - coverage[..., None]) + colour * coverage[..., None]
        ink = np.clip(line_half_width + 0.5 - np.abs(d), 0.0, 1.0)
        sketch = np.minimum(sketch, 1.0 - (1.0 - INK) * ink)
    return np.repeat(sketch[..., None], 3, axis=2), shaded


def _shade(d: np.ndarray, bevel: float, base: np.ndarray) -> np.ndarray:
    """Lambert + a small highlight on a height map with a quarter-circle rim of width `bevel`."""
    t = np.clip(-d / bevel, 0.0, 1.0)
    height = bevel * np.sqrt(1.0 - (1.0 - t) ** 2)   # a circle with bevel = radius is a sphere
    dh_dy, dh_dx = np.gradient(height)
    normal = np.stack([-dh_dx, -dh_dy, np.ones_like(height)], axis=-1)
    normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
    diffuse = np.clip(normal @ LIGHT, 0.0, 1.0)[..., None]
    highlight = np.clip(normal @ HALF_VECTOR, 0.0, 1.0)[..., None] ** 30
    return np.clip(base * (0.3 + 0.85 * diffuse) + 0.35 * highlight, 0.0, 1.0)


def make_pair_image(seed: int, split: str, index: int, size: int) -> Image.Image:
    """The aligned A|B image (size*2 x size) for one sample; a pure function of its arguments."""
    rng = np.random.default_rng([seed, SPLIT_STREAMS[split], index])
    sketch, shaded = render_pair(sample_shapes(rng, size), size)
    pair = np.concatenate([sketch, shaded], axis=1)
    return Image.fromarray(np.round(pair * 255).astype(np.uint8), mode="RGB")


def _manifest(counts: dict[str, int], size: int, seed: int) -> dict:
    return {"generator": "datasets.make_demo", "version": DEMO_VERSION, "size": size, "seed": seed,
            "splits": counts}


def _read_manifest(root: Path) -> dict | None:
    try:
        return json.loads((root / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def _write_dataset(target: Path, counts: dict[str, int], size: int, seed: int) -> None:
    for split, count in counts.items():
        (target / split).mkdir()
        for index in range(count):
            make_pair_image(seed, split, index, size).save(target / split / f"{index:04d}.png")
    # Written last: a folder with a manifest is a complete folder.
    (target / MANIFEST).write_text(json.dumps(_manifest(counts, size, seed), indent=2) + "\n")


def ensure_demo_dataset(root: Path = DEFAULT_ROOT, n_train: int = 400, n_test: int = 20,
                        size: int = 128, seed: int = 0) -> Path:
    """Generate the demo set under `root` unless an identical one is already there; return `root`.

    Generation goes into a temporary sibling folder that is renamed into place at the end, so an
    interrupted run never leaves a partial dataset behind under `root`.
    """
    if n_train < 1 or n_test < 0:
        raise ValueError(f"demo dataset: need n_train >= 1 and n_test >= 0, got {n_train} and {n_test}")
    if size < 32:
        raise ValueError(f"demo dataset: size must be at least 32 px, got {size}")
    root = Path(root)
    counts = {"train": n_train, "test": n_test}
    wanted = _manifest(counts, size, seed)
    if _read_manifest(root) == wanted:
        return root

    logger.info("generating the demo dataset in %s (%d train, %d test, %d px)", root, n_train, n_test, size)
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}.partial-", dir=root.parent))
    try:
        _write_dataset(staging, counts, size, seed)
        stale = None
        if root.exists():
            stale = root.with_name(f".{root.name}.stale-{os.getpid()}")
            os.replace(root, stale)
        try:
            os.replace(staging, root)
        except OSError:
            # Another process finished the same job between our check and our rename.
            if _read_manifest(root) != wanted:
                raise
        if stale is not None:
            shutil.rmtree(stale, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate the built-in sketch -> shaded shapes demo dataset.")
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="output folder (default: %(default)s)")
    parser.add_argument("--n_train", type=int_range(1), default=400, help="training pairs (default: %(default)s)")
    parser.add_argument("--n_test", type=int_range(0), default=20, help="test pairs (default: %(default)s)")
    parser.add_argument("--size", type=int_range(32), default=128,
                        help="height and width of each half in px (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        root = ensure_demo_dataset(args.root, args.n_train, args.n_test, args.size, args.seed)
    except OSError as error:
        print(f"make_demo: error: cannot write {args.root}: {error.strerror or error}", file=sys.stderr)
        return 1
    print(f"demo dataset ready in {root} ({args.n_train} train, {args.n_test} test pairs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
