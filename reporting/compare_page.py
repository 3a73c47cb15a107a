"""One self-contained page comparing training runs: curves overlaid, the options that differ,
the test metrics with the best of each column marked, and the same test images side by side.

Images are embedded as data URIs and the charts are inline SVG (reporting/svg_chart.py), so the
page is a single file that can be mailed or moved. Text goes through dominate's escaping.
"""
from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path
from typing import Callable, Sequence

import dominate
from PIL import Image
from dominate import tags
from dominate.util import raw

from reporting.html import format_value
from reporting.metric_goals import HIGHER_IS_BETTER, best_positions
from reporting.run_summary import CompareError, RunSummary, common_stems, differing_options
from reporting.svg_chart import colour, line_chart

_CSS = """
body { font-family: sans-serif; margin: 1em 2em; color: #222; background: #fff; }
h2 { font-size: 1.2em; margin-top: 1.5em; border-bottom: 1px solid #ccc; }
table.grid { border-collapse: collapse; margin: 0.5em 0; }
table.grid th, table.grid td { border: 1px solid #ccc; padding: 2px 8px; text-align: right; }
table.grid th { background: #f2f2f2; }
table.grid td.name { text-align: left; }
td.best { font-weight: bold; background: #dff3df; }
div.charts svg { margin: 0 12px 12px 0; }
table.images td { padding: 3px; text-align: center; vertical-align: top; font-size: 0.85em; }
table.images img { display: block; image-rendering: pixelated; }
span.swatch { display: inline-block; width: 12px; height: 12px; margin-right: 6px; }
p.note { color: #666; font-size: 0.9em; }
"""
VISUAL_ORDER = ("real_A", "fake_B", "real_B")
GOAL_TEXT = {True: "higher is better", False: "lower is better"}


def data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def _run_cell(run: RunSummary, index: int) -> None:
    with tags.td(cls="name"):
        tags.span(cls="swatch", style=f"background:{colour(index)}")
        tags.span(run.name)


def _charts(title: str, runs: Sequence[RunSummary], per_run: str) -> None:
    names: dict[str, None] = {}
    for run in runs:
        for name in getattr(run, per_run):
            names.setdefault(name, None)
    if not names:
        return
    tags.h2(title)
    with tags.div(cls="charts", id=per_run):
        for name in names:
            raw(line_chart(name, {run.name: getattr(run, per_run).get(name, []) for run in runs}))


def task_groups(runs: Sequence[RunSummary], stems: Sequence[str]) -> list[int]:
    """Each run's group: runs whose test inputs and targets (real_A, real_B of every common
    image, by decoded pixels) are the same share one. Runs tested in another --direction, on
    another --dataroot or at another size solve another task: side by side under one input their
    outputs would mislead, and their metrics are not comparable."""
    keys: list[str] = []
    groups = []
    for run in runs:
        digest = hashlib.sha256()
        for stem in stems:
            files = run.image_files(stem)
            for visual in ("real_A", "real_B"):
                if visual in files:
                    with Image.open(files[visual]) as image:
                        digest.update(f"{stem}/{visual}/{image.mode}/{image.size}".encode())
                        digest.update(image.tobytes())
        key = digest.hexdigest()
        if key not in keys:
            keys.append(key)
        groups.append(keys.index(key))
    return groups


def _metrics_table(runs: Sequence[RunSummary], groups: Sequence[int]) -> None:
    columns = [m for m in HIGHER_IS_BETTER if any(m in run.test_metrics for run in runs)]
    columns += sorted({m for run in runs for m in run.test_metrics} - set(columns))
    with tags.table(cls="grid", id="test_metrics"):
        with tags.tr():
            tags.th("run")
            for metric in columns:
                goal = HIGHER_IS_BETTER.get(metric)
                tags.th(metric, title=GOAL_TEXT[goal] if goal is not None else "")
        # The best among runs of the same test inputs only (a run alone in its group has no rival).
        best: dict[str, set[int]] = {m: set() for m in columns}
        for group in set(groups):
            members = [i for i, g in enumerate(groups) if g == group]
            if len(members) < 2:
                continue
            for m in columns:
                best[m] |= {members[k] for k in best_positions(m, [runs[i].test_metrics.get(m) for i in members])}
        for i, run in enumerate(runs):
            with tags.tr(data_run=run.name):
                _run_cell(run, i)
                for metric in columns:
                    value = run.test_metrics.get(metric)
                    if value is None:
                        tags.td("-", data_metric=metric)
                        continue
                    winner = i in best[metric]
                    tags.td(format_value(value) + (" \u2605" if winner else ""), data_metric=metric,
                            data_value=repr(float(value)), cls="best" if winner else "")
    among = "" if len(set(groups)) == 1 else " among the runs tested on the same inputs and targets"
    tags.p(f"\u2605 the best of each column{among}: " + ", ".join(f"{m} {GOAL_TEXT[g]}" for m, g in HIGHER_IS_BETTER.items()
                                                          if m in columns), cls="note")


def _images(runs: Sequence[RunSummary], stems: Sequence[str], width: int, shared: bool) -> None:
    """One input and one target column when every run was tested on the same ones (``shared``),
    else each run's own input, output and target."""
    with tags.table(cls="images", id="test_images"):
        with tags.tr():
            tags.th("image")
            if shared:
                tags.th("input (real_A)")
            for run in runs:
                if not shared:
                    tags.th(f"{run.name} input (real_A)")
                tags.th(f"{run.name} (fake_B)")
                if not shared:
                    tags.th(f"{run.name} target (real_B)")
            if shared:
                tags.th("target (real_B)")
        for stem in stems:
            files = [run.image_files(stem) for run in runs]
            with tags.tr(data_stem=stem):
                tags.td(stem)
                if shared:
                    cells = [("real_A", files[0].get("real_A"), "")]
                    cells += [("fake_B", f.get("fake_B"), run.name) for f, run in zip(files, runs)]
                    cells += [("real_B", files[0].get("real_B"), "")]
                else:
                    cells = [(visual, f.get(visual), run.name) for f, run in zip(files, runs) for visual in VISUAL_ORDER]
                for visual, path, run_name in cells:
                    with tags.td():
                        if path is not None:
                            tags.img(src=data_uri(path), alt=f"{stem} {visual} {run_name}".strip(),
                                     style=f"width:{int(width)}px", data_visual=visual, data_run=run_name)


def write_compare_page(runs: Sequence[RunSummary], out: Path, max_images: int = 12, image_width: int = 128,
                       warn: Callable[[str], None] = lambda message: None) -> Path:
    names = [run.name for run in runs]
    if len(runs) < 2:
        raise CompareError("give at least two run folders to compare")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise CompareError(f"two runs are named '{duplicates[0]}' (their test results would share a folder)")
    stems = common_stems(list(runs))
    if not stems:
        raise CompareError("the runs' test results have no image in common (test them on the same split: "
                           + ", ".join(str(run.test_dir) for run in runs) + ")")
    groups = task_groups(runs, stems)
    apart = ""
    if len(set(groups)) > 1:
        listed = "; ".join(", ".join(n for n, g in zip(names, groups) if g == group) for group in sorted(set(groups)))
        apart = (f"the runs were not tested on the same inputs and targets (another --direction, --dataroot or "
                 f"size?): {listed}. Each run's own input and target are shown, and \u2605 compares only runs of "
                 "the same inputs")
        warn(apart)
    doc = dominate.document(title="compare: " + ", ".join(names))
    with doc.head:
        tags.meta(charset="utf-8")
        tags.style(_CSS)
    with doc:
        tags.h1("Runs compared: " + ", ".join(names))
        with tags.table(cls="grid", id="runs"):
            with tags.tr():
                for header in ("run", "folder", "tested checkpoint", "test-time behaviour"):
                    tags.th(header)
            for i, run in enumerate(runs):
                with tags.tr():
                    _run_cell(run, i)
                    for text in (run.folder, run.test.get("checkpoint", ""), run.test.get("behaviour", "")):
                        tags.td(str(text), cls="name")
        tags.h2("Options that differ")
        table = differing_options(list(runs))
        if table:
            with tags.table(cls="grid", id="options"):
                with tags.tr():
                    tags.th("option")
                    for name in names:
                        tags.th(name)
                for key, values in table.items():
                    with tags.tr(data_option=key):
                        tags.td(key, cls="name")
                        for value in values:
                            tags.td("-" if value is None else value, cls="name")
        else:
            tags.p("none: the runs were trained with the same options", cls="note")
        _charts("Loss curves", runs, "losses")
        _charts("Validation curves", runs, "validation")
        tags.h2("Test metrics")
        if apart:
            tags.p(apart[0].upper() + apart[1:] + ".", cls="note", id="apart")
        _metrics_table(runs, groups)
        shown = stems[:max_images]
        tags.h2(f"Test images ({len(shown)} of the {len(stems)} that every run wrote)")
        _images(runs, shown, image_width, shared=len(set(groups)) == 1)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.is_dir():
        raise CompareError(f"--out {out}: is a folder; name the page to write (e.g. {out / 'compare.html'})")
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(doc.render(), encoding="utf-8")
        tmp.replace(out)
    except OSError as err:
        tmp.unlink(missing_ok=True)   # a page is whole or absent, and no temporary file stays
        raise CompareError(f"{out}: could not be written ({err.strerror or err})") from None
    return out
