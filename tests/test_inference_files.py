"""translate.py never writes a result over one of its own inputs, does not read its own
--output inside --input, names apart two inputs of one stem, and says which files of a folder it
skipped (inference/files.py)."""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np
import pytest
import tifffile

from inference.files import list_jobs
from tests.test_translate import rng_image, run, save_ours

EXTENSIONS = {".png", ".jpg", ".tif"}


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with the md5 of its bytes."""
    return {str(p.relative_to(folder)): hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def ck(tmp_path: Path) -> Path:
    save_ours(tmp_path / "ck" / "exp", netG="resnet_6blocks", ngf=2)
    return tmp_path


def test_a_single_file_whose_result_is_itself_is_refused(ck: Path, capsys: pytest.CaptureFixture) -> None:
    folder = ck / "x"
    folder.mkdir()
    rng_image((20, 16), "RGB").save(folder / "b.png")
    # 16-bit RGB gives a .tif result: c.tif would be written over itself too.
    tifffile.imwrite(folder / "c.tif", np.random.default_rng(0).integers(0, 65536, (12, 10, 3), dtype=np.uint16))
    before = snapshot(folder)
    for name in ("b.png", "c.tif"):
        source = folder / name
        assert run(ck, "--name", "exp", "--input", str(source), "--output", str(folder)) == 1
        assert capsys.readouterr().err == (f"translate.py: error: {source}: the result of {source} would replace "
                                           "this input; give an --output that holds none of the inputs\n")
    assert snapshot(folder) == before


def test_an_output_inside_the_input_is_not_read_again(ck: Path) -> None:
    folder = ck / "in"
    folder.mkdir()
    rng_image((20, 16), "RGB").save(folder / "a.jpg")
    rng_image((18, 14), "RGB", 1).save(folder / "b.png")
    out = folder / "out"
    assert run(ck, "--name", "exp", "--input", str(folder), "--output", str(out)) == 0
    first = snapshot(out)
    assert set(first) == {"a.png", "b.png"}
    # The rerun reads a.jpg and b.png only: no out/out/, the same bytes in out/.
    assert run(ck, "--name", "exp", "--input", str(folder), "--output", str(out)) == 0
    assert snapshot(out) == first


def test_an_output_above_the_input_never_replaces_an_input(ck: Path, capsys: pytest.CaptureFixture) -> None:
    # --input top/out, --output top: out/out/a.png's result would be top/out/a.png, an input of this run.
    inputs = ck / "top" / "out"
    (inputs / "out").mkdir(parents=True)
    rng_image((20, 16), "RGB").save(inputs / "a.png")
    rng_image((20, 16), "RGB", 1).save(inputs / "out" / "a.png")
    before = snapshot(ck / "top")
    assert run(ck, "--name", "exp", "--input", str(inputs), "--output", str(ck / "top")) == 1
    assert capsys.readouterr().err == (f"translate.py: error: {inputs / 'a.png'}: the result of "
                                       f"{inputs / 'out' / 'a.png'} would replace this input; give an --output "
                                       "that holds none of the inputs\n")
    assert snapshot(ck / "top") == before


def test_skipped_files_are_counted_by_extension(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    rng_image((8, 8), "RGB").save(folder / "a.png")
    rng_image((8, 8), "RGB").save(folder / "anim.gif")
    rng_image((8, 8), "RGB").save(folder / "sub" / "b.GIF")
    (folder / "notes.txt").write_text("x")
    (folder / "README").write_text("x")
    (folder / ".hidden.txt").write_text("x")   # hidden files are left out on purpose, not counted
    with caplog.at_level(logging.INFO, logger="inference.files"):
        jobs = list_jobs(folder, tmp_path / "out", EXTENSIONS)
    assert [j.source.name for j in jobs] == ["a.png"]
    assert [r.getMessage() for r in caplog.records] == [
        f"skipped 4 file(s) in {folder} that are not images by their extension: (no extension) (1), .gif (2), "
        ".txt (1)"]


def test_inputs_of_one_stem_get_results_of_their_own(ck: Path) -> None:
    """a.jpg and a.png in one folder: each gets its own result, named by test.py's rule (the later
    one's extension joins its stem), equal to what translating that file alone writes; an input
    already called a_png.png is named apart in turn; a stem in another folder keeps its name."""
    folder = ck / "in"
    (folder / "sub").mkdir(parents=True)
    for name, seed in (("a.jpg", 0), ("a.png", 1), ("a_png.png", 2), ("sub/a.png", 3)):
        rng_image((20, 16), "RGB", seed).save(folder / name)
    out = ck / "out"
    assert run(ck, "--name", "exp", "--input", str(folder), "--output", str(out)) == 0
    results = snapshot(out)
    assert set(results) == {"a.png", "a_png.png", "a_png_png.png", "sub/a.png"}
    for source, result in (("a.jpg", "a.png"), ("a.png", "a_png.png"), ("a_png.png", "a_png_png.png"),
                           ("sub/a.png", "sub/a.png")):
        alone = ck / "alone" / source
        assert run(ck, "--name", "exp", "--input", str(folder / source), "--output", str(alone)) == 0
        assert snapshot(alone) == {Path(source).stem + ".png": results[result]}, source


def test_no_two_results_differ_only_in_case(tmp_path: Path) -> None:
    """Sibling folders or files whose names differ only in case would be one on macOS or Windows:
    every result path is distinct case-folded, and each keeps its input's name where it can."""
    folder = tmp_path / "in"
    for name in ("A.png", "a.png", "Sub/x.png", "sub/x.png", "sub/X.png", "Sub/deep/y.png"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        rng_image((8, 8), "RGB").save(folder / name)
    jobs = list_jobs(folder, tmp_path / "out", EXTENSIONS)
    targets = {str(j.source.relative_to(folder)): str(j.target.relative_to(tmp_path / "out")) for j in jobs}
    assert targets == {"A.png": "A.png", "a.png": "a_png.png", "Sub/x.png": "Sub/x.png",
                       "Sub/deep/y.png": "Sub/deep/y.png", "sub/X.png": "sub_2/X.png", "sub/x.png": "sub_2/x_png.png"}
    assert len({t.casefold() for t in targets.values()}) == len(targets)
