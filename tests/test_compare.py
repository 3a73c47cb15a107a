"""compare.py: three tiny real runs on one page, checked in headless Chromium (images load,
curves drawn point by point, the table's values are the runs' metrics.json)."""
from __future__ import annotations

import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest

import compare
import test as test_driver
import train as train_driver
from reporting.html import format_value
from reporting.loss_log import read_loss_log
from reporting.metric_goals import HIGHER_IS_BETTER
from reporting.metrics import IMAGE, SET, metric_names
from tests.pipeline_helpers import make_aligned_dataset, tiny_args, without

RUNS = {"base": [], "fast_lr": ["--lr", "0.002"], "wide": ["--ngf", "8"]}
# After the page has loaded: what the browser made of each image and curve, as text in the DOM.
PROBE = """<script>
window.addEventListener('load', () => {
  const out = document.createElement('pre'); out.id = 'probe';
  const images = [...document.images].map(i => i.naturalWidth);
  const paths = [...document.querySelectorAll('path[data-series]')].map(p => p.getTotalLength());
  out.textContent = JSON.stringify({images, paths});
  document.body.appendChild(out);
});
</script>"""


class Dom(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict, list[str]]] = []
        self._open: list[int] = []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs), []))
        if tag not in ("img", "meta", "path", "rect", "circle", "br"):
            self._open.append(len(self.elements) - 1)

    def handle_endtag(self, tag):
        if self._open:
            self._open.pop()

    def handle_data(self, data):
        if self._open:
            self.elements[self._open[-1]][2].append(data)

    def find(self, tag: str, **attrs: str) -> list[tuple[dict, str]]:
        return [(a, "".join(text)) for t, a, text in self.elements
                if t == tag and all(a.get(k.replace("_", "-")) == v for k, v in attrs.items())]


@pytest.fixture(scope="module")
def three_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("compare")
    data = make_aligned_dataset(root / "data", {"train": 3, "val": 2, "test": 3})
    ck, results = root / "ck", root / "results"
    for name, extra in RUNS.items():
        args = [*tiny_args(data, ck, name), "--max_steps", "4", "--print_freq", "1", *extra]
        assert train_driver.main(args + ["--val_freq", "2"]) == 0
        # test.py reads the architecture from the checkpoint; the display is training's.
        test_args = without(tiny_args(data, ck, name), "--display_id", "--ngf", "--ndf")
        assert test_driver.main(test_args + ["--eval", "--results_dir", str(results), "--fid"]) == 0
    return root, ck, results


def test_page_of_three_runs_in_chromium(chromium, three_runs, tmp_path: Path) -> None:
    root, ck, results = three_runs
    out = tmp_path / "page" / "compare.html"
    assert compare.main([*(str(ck / n) for n in RUNS), "--results_dir", str(results), "--out", str(out)]) == 0
    probe = tmp_path / "probe.html"
    probe.write_text(out.read_text().replace("</body>", PROBE + "</body>"))
    dom = Dom()
    dom.feed(chromium._run(probe, "--virtual-time-budget=5000", "--dump-dom", size=(1400, 1000)))
    seen = json.loads(dom.find("pre", id="probe")[0][1])

    # The same three test images of every run, and every image decoded by the browser.
    assert [a["data-stem"] for a, _ in dom.find("tr") if "data-stem" in a] == ["000", "001", "002"]
    assert len(seen["images"]) == 3 * (len(RUNS) + 2) and all(w == 32 for w in seen["images"])

    # Each loss and validation curve: one path per run, a point per logged record, drawn.
    paths = dom.find("path")
    assert all(length > 0 for length in seen["paths"]) and len(seen["paths"]) == len(paths)
    for name in RUNS:
        records = read_loss_log(ck / name / "loss_log.jsonl")
        losses = [r for r in records if "losses" in r]
        vals = [r for r in records if "metrics" in r]
        assert len(losses) == 4 and len(vals) == 2
        mine = {(a["data-series"], len(re.findall(r"[ML]", a["d"]))) for a, _ in paths if a["data-series"] == name}
        assert {n for _, n in mine} == {4, 2}
        # One path per chart: 4 losses, then each per-image metric.
        assert len([a for a, _ in paths if a["data-series"] == name]) == 4 + len(metric_names(IMAGE))

    # The table holds each run's metrics.json figures; the best of each column is marked.
    for name in RUNS:
        saved = json.loads((results / name / "test_latest" / "metrics.json").read_text())
        figures = {**saved["mean"], **{k: saved["set"][k] for k in metric_names(SET)}}
        row = [a for a in dom.elements if a[0] == "tr" and a[1].get("data-run") == name]
        assert row
        cells = {a["data-metric"]: (a, text) for a, text in dom.find("td") if "data-metric" in a
                 and a.get("data-value") is not None and _row_of(dom, a) == name}
        assert set(cells) == set(figures)
        for metric, value in figures.items():
            attrs, text = cells[metric]
            assert float(attrs["data-value"]) == value
            assert text.startswith(format_value(value))
            pick = max if HIGHER_IS_BETTER[metric] else min
            best = pick(json.loads((results / n / "test_latest" / "metrics.json").read_text())["mean" if metric in
                        metric_names(IMAGE) else "set"][metric] for n in RUNS)
            assert ("best" in attrs.get("class", "")) == (value == best), (name, metric)

    # The options that differ, and only those.
    options = {a["data-option"] for a, _ in dom.find("tr") if "data-option" in a}
    assert options == {"lr", "ngf"}


def _row_of(dom: Dom, cell_attrs: dict) -> str | None:
    """The data-run of the table row that holds a cell (rows and their cells are in document order)."""
    run = None
    for tag, attrs, _ in dom.elements:
        if tag == "tr":
            run = attrs.get("data-run")
        if attrs is cell_attrs:
            return run
    return None


def test_bad_input_is_one_line(three_runs, tmp_path: Path, capsys) -> None:
    root, ck, results = three_runs
    out = tmp_path / "compare.html"
    assert compare.main([str(ck / "base"), str(root / "data"), "--results_dir", str(results), "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "not a training run" in err and str(root / "data") in err

    # Test results without an image in common.
    shutil.copytree(ck / "wide", tmp_path / "other")
    other = results / "other" / "test_latest"
    shutil.copytree(results / "wide" / "test_latest", other)
    saved = json.loads((other / "metrics.json").read_text())
    saved["images"] = {f"x{k}": v for k, v in saved["images"].items()}
    (other / "metrics.json").write_text(json.dumps(saved))
    assert compare.main([str(ck / "base"), str(tmp_path / "other"), "--results_dir", str(results),
                         "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no image in common" in err
    assert not out.exists()

    assert compare.main([str(ck / "base"), str(ck / "wide"), "--results_dir", str(tmp_path / "nothing"),
                         "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no test results" in err and "test.py" in err


def test_out_folder_and_bad_sizes_are_one_line(three_runs, tmp_path: Path, capsys) -> None:
    root, ck, results = three_runs
    runs = [str(ck / "base"), str(ck / "wide"), "--results_dir", str(results)]
    folder = tmp_path / "pages"
    folder.mkdir()
    assert compare.main(runs + ["--out", str(folder)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"compare.py: error: --out {folder}: is a folder; name the page to write (e.g. {folder / 'compare.html'})"
    assert list(tmp_path.iterdir()) == [folder] and list(folder.iterdir()) == []   # no temporary file left
    for flag, value in (("--image_width", "-5"), ("--max_images", "0"), ("--load_iter", "-1")):
        with pytest.raises(SystemExit) as exit_info:
            compare.main(runs + [flag, value])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert err.startswith(f"compare.py: error: argument {flag}:") and value in err
