"""compare.py with runs tested on different inputs (another --direction: one run's input is the
other's target): each run's own input and target are shown, a one-line warning says so, and ★
compares only runs of the same inputs (the page showed the first run's input and target for all
and starred a run that solved the opposite task). Its parser errors are one line."""
from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import compare
from tests.test_compare import Dom, _row_of

STEMS = ("a", "b")


def fake_run(ck: Path, results: Path, name: str, direction: str, l1: float, seed: int) -> None:
    """A run folder and its test.py results: real_A/real_B the two halves of a fixed pair
    (swapped for BtoA), fake_B noise of its own."""
    (ck / name).mkdir(parents=True)
    (ck / name / "train_opt.txt").write_text(f"  direction: {direction}   (typed)\n            lr: 0.0002\n")
    images = results / name / "test_latest" / "images"
    images.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i, stem in enumerate(STEMS):
        halves = [np.full((8, 8, 3), 40 * i + 10, np.uint8), np.full((8, 8, 3), 200 - 30 * i, np.uint8)]
        real_a, real_b = halves if direction == "AtoB" else halves[::-1]
        for visual, pixels in (("real_A", real_a), ("real_B", real_b),
                               ("fake_B", rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))):
            Image.fromarray(pixels).save(images / f"{stem}_{visual}.png")
    (results / name / "test_latest" / "metrics.json").write_text(json.dumps(
        {"checkpoint": "x", "behaviour": "b", "mean": {"L1": l1, "PSNR": 20 - l1},
         "images": {stem: {"L1": l1} for stem in STEMS}}))


def shown(page: Path) -> tuple[Dom, dict[tuple[str, str], Path]]:
    dom = Dom()
    dom.feed(page.read_text())
    return dom, {(a["data-run"], a["data-visual"]): a["src"] for a, _ in dom.find("img")
                 if a["alt"].startswith("a ")}


def uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def test_runs_of_opposite_directions_show_their_own_inputs_and_are_not_ranked_together(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    ck, results = tmp_path / "ck", tmp_path / "results"
    fake_run(ck, results, "ab", "AtoB", 0.3, 1)
    fake_run(ck, results, "ab2", "AtoB", 0.2, 2)
    fake_run(ck, results, "ba", "BtoA", 0.1, 3)   # the lowest L1, of the other task
    out = tmp_path / "cmp.html"
    assert compare.main([str(ck / "ab"), str(ck / "ba"), str(ck / "ab2"), "--results_dir", str(results),
                         "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("compare.py: warning: the runs were not tested on the same")
    assert "ab, ab2; ba" in err

    dom, images = shown(out)
    for run in ("ab", "ba", "ab2"):   # each run's own files, byte for byte
        for visual in ("real_A", "fake_B", "real_B"):
            assert images[(run, visual)] == uri(results / run / "test_latest" / "images" / f"a_{visual}.png")
    assert images[("ba", "real_A")] == images[("ab", "real_B")] != images[("ab", "real_A")]
    # ★ only within the AtoB pair: ab2 (L1 0.2 < 0.3, PSNR 19.8 > 19.7); ba (0.1) is not ranked.
    starred = {(a["data-metric"], _row_of(dom, a)) for a, text in dom.find("td") if "\u2605" in text}
    assert starred == {("L1", "ab2"), ("PSNR", "ab2")}


def test_runs_of_the_same_inputs_share_one_input_column_and_no_warning(tmp_path: Path, capsys) -> None:
    ck, results = tmp_path / "ck", tmp_path / "results"
    fake_run(ck, results, "ab", "AtoB", 0.3, 1)
    fake_run(ck, results, "ab2", "AtoB", 0.2, 2)
    out = tmp_path / "cmp.html"
    assert compare.main([str(ck / "ab"), str(ck / "ab2"), "--results_dir", str(results), "--out", str(out)]) == 0
    assert capsys.readouterr().err == ""
    dom, images = shown(out)
    assert set(images) == {("", "real_A"), ("ab", "fake_B"), ("ab2", "fake_B"), ("", "real_B")}




@pytest.mark.parametrize("argv,message", [
    (["a", "b", "--max_images", "0"], "argument --max_images: must be a positive integer, got 0"),
    ([], "the following arguments are required: runs"),
])
def test_parser_errors_are_one_line(argv: list[str], message: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as stop:
        compare.main(argv)
    assert stop.value.code == 2
    assert capsys.readouterr().err == f"compare.py: error: {message} (see --help)\n"
