"""One list of image extensions (data/image_io.py): what the datasets/ tools write, the loader
reads, and no other file keeps a list of its own."""
from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from data import DataConfig, create_dataset
from data.image_io import IMAGE_EXTENSIONS
from datasets import combine_A_and_B

ROOT = Path(__file__).resolve().parents[1]
SKIP_DIRS = {".venv", ".git", "build", "__pycache__"}


def test_a_ppm_pair_written_by_combine_loads_with_its_pixels(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    for folder, pixels in (("A", a), ("B", b)):
        (tmp_path / folder / "train").mkdir(parents=True)
        Image.fromarray(pixels).save(tmp_path / folder / "train" / "1.ppm")
    assert combine_A_and_B.main(["--fold_A", str(tmp_path / "A"), "--fold_B", str(tmp_path / "B"),
                                 "--fold_AB", str(tmp_path / "AB")]) == 0
    written = tmp_path / "AB" / "train" / "1.ppm"
    assert written.is_file()

    dataset = create_dataset("aligned", DataConfig(tmp_path / "AB", preprocess="none", no_flip=True))
    assert len(dataset) == 1
    item = dataset[0]
    # PPM is lossless: the loader's [-1, 1] values are the 8-bit pixels, scaled by hand here.
    for key, pixels in (("A", a), ("B", b)):
        expected = torch.from_numpy(pixels).permute(2, 0, 1).float() / 127.5 - 1
        assert torch.allclose(item[key], expected, atol=1e-6), key


def test_the_tools_use_the_loaders_list() -> None:
    from data import image_io
    from datasets import make_edges
    assert combine_A_and_B.list_files is image_io.list_files   # lists with IMAGE_EXTENSIONS
    assert make_edges.IMAGE_EXTENSIONS is IMAGE_EXTENSIONS
    assert ".ppm" in IMAGE_EXTENSIONS


def extension_lists(path: Path) -> list[int]:
    """Lines of set, list, tuple or frozenset literals that hold two or more image extensions."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.Set, ast.List, ast.Tuple)):
            names = {e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)}
            if len(names & {".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".tif", ".tiff", ".webp"}) >= 2:
                lines.append(node.lineno)
    return lines


@pytest.mark.parametrize("text, expected", [("X = {'.png', '.jpg'}", [1]), ("Y = ('.png',)", [])])
def test_the_scan_sees_a_list(tmp_path: Path, text: str, expected: list[int]) -> None:
    (tmp_path / "m.py").write_text(text)
    assert extension_lists(tmp_path / "m.py") == expected


def test_no_other_file_keeps_a_list_of_image_extensions() -> None:
    product = [p for p in ROOT.rglob("*.py")
               if not SKIP_DIRS & set(p.relative_to(ROOT).parts) and p.parts[len(ROOT.parts)] != "tests"]
    found = {str(p.relative_to(ROOT)): lines for p in product if (lines := extension_lists(p))}
    assert set(found) == {"data/image_io.py"}, found
