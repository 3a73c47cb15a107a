"""Static HTML pages for training snapshots and test results, built on dominate.

Two rules keep any file name safe on a page:
- text (titles, captions, names) always goes through dominate's escaping, so a name such as
  ``<b>x</b>.png`` shows as those characters instead of turning into markup;
- every ``src``/``href`` is URL-quoted, so ``#``, ``?`` and spaces in a file name still point at
  the file instead of starting a fragment or a query.
Paths on a page are always relative to the page's folder, so the folder can be copied or served
from anywhere.
"""
from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, NamedTuple, Sequence
from urllib.parse import quote

import dominate
from dominate import tags

log = logging.getLogger(__name__)

# One stylesheet for the training and the test pages, so both look the same. No '>' or '&' in it:
# dominate escapes <style> text too.
_CSS = """
body { font-family: sans-serif; margin: 1em 2em; color: #222; background: #fff; }
h1 { font-size: 1.5em; }
h2 { font-size: 1.2em; margin-top: 1.5em; border-bottom: 1px solid #ccc; }
table.images td { padding: 4px; vertical-align: top; text-align: center; }
table.images img { display: block; image-rendering: pixelated; }
table.images p { margin: 2px 0 0 0; font-size: 0.85em; word-break: break-all; }
table.metrics { border-collapse: collapse; margin: 0.5em 0; }
table.metrics th, table.metrics td { border: 1px solid #ccc; padding: 2px 8px; text-align: right; }
table.metrics th { background: #f2f2f2; }
table.metrics td.name { text-align: left; }
p.note { color: #666; font-size: 0.9em; }
"""


class ImageCell(NamedTuple):
    """One image on a page; ``path`` and ``link`` are relative to the page's folder."""
    path: str
    caption: str = ""
    link: str | None = None  # None: the image links to itself (click to see it full size)


def url(relative_path: str | Path) -> str:
    """A relative path as it must appear in src/href: '/'-separated and percent-quoted."""
    # errors: a file name that is not valid UTF-8 is quoted byte for byte, as it is on disk.
    return quote(Path(relative_path).as_posix(), safe="/", errors="surrogateescape")


def format_value(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return f"{value:.4g}" if isinstance(value, float) else str(value)


@dataclass
class Section:
    """A titled block for a page: optional text, rows of images, and a table.

    ``table`` holds one dict per row; its columns are the union of the keys in first-seen order.
    This is how callers add pages parts of their own (e.g. layer-inspection images with a stats
    table) without this module knowing about them.
    """
    title: str
    text: str = ""
    image_rows: list[list[ImageCell]] = field(default_factory=list)
    table: list[Mapping[str, object]] = field(default_factory=list)
    image_width: int = 256


class HTMLPage:
    """A page written to ``web_dir/index.html``; images are expected under ``web_dir``."""

    def __init__(self, web_dir: Path, title: str, refresh: int = 0) -> None:
        self.web_dir = Path(web_dir)
        self.title = title
        self.web_dir.mkdir(parents=True, exist_ok=True)
        self.doc = dominate.document(title=title)
        with self.doc.head:
            tags.meta(charset="utf-8")
            if refresh > 0:
                # Reload the page while training writes new snapshots.
                tags.meta(http_equiv="refresh", content=str(int(refresh)))
            tags.style(_CSS)
        with self.doc:
            tags.h1(title)

    @property
    def image_dir(self) -> Path:
        return self.web_dir / "images"

    def add_header(self, text: str, level: int = 2) -> None:
        header = {1: tags.h1, 2: tags.h2, 3: tags.h3, 4: tags.h4}[min(max(level, 1), 4)]
        with self.doc:
            header(text)

    def add_text(self, text: str) -> None:
        with self.doc:
            tags.p(text, cls="note")

    def add_images(self, rows: Sequence[Sequence[ImageCell | tuple]], width: int = 256) -> None:
        """A table of images: one table row per entry of ``rows``, captions under the images."""
        with self.doc:
            with tags.table(cls="images"):
                for row in rows:
                    with tags.tr():
                        for raw_cell in row:
                            cell = ImageCell(*raw_cell)
                            with tags.td():
                                with tags.a(href=url(cell.link if cell.link is not None else cell.path)):
                                    tags.img(src=url(cell.path), alt=cell.caption or cell.path,
                                             style=f"width:{int(width)}px")
                                if cell.caption:
                                    tags.p(cell.caption)

    def add_table(self, metrics: Mapping[str, object] | Sequence[Mapping[str, object]],
                  name_header: str = "metric") -> None:
        """A mapping becomes a name/value table; a list of dicts becomes one row per dict."""
        if isinstance(metrics, Mapping):
            rows: list[Mapping[str, object]] = [{name_header: k, "value": v} for k, v in metrics.items()]
        else:
            rows = list(metrics)
        if not rows:
            return
        columns: dict[str, None] = {}
        for row in rows:
            for key in row:
                columns.setdefault(str(key), None)
        with self.doc:
            with tags.table(cls="metrics"):
                with tags.tr():
                    for column in columns:
                        tags.th(column)
                for row in rows:
                    with tags.tr():
                        for i, column in enumerate(columns):
                            value = row.get(column, "")
                            cell = tags.td(format_value(value))
                            if i == 0:
                                cell["class"] = "name"

    def add_section(self, section: Section) -> None:
        self.add_header(section.title, level=2)
        if section.text:
            self.add_text(section.text)
        if section.image_rows:
            self.add_images(section.image_rows, width=section.image_width)
        if section.table:
            self.add_table(section.table)

    def save(self, filename: str = "index.html") -> Path:
        path = self.web_dir / filename
        # Write then rename, so a browser refreshing mid-write never shows half a page.
        tmp = path.with_name(f".{filename}.{os.getpid()}.tmp")
        tmp.write_text(self.doc.render(), encoding="utf-8")
        tmp.replace(path)
        return path


@dataclass
class ResultRow:
    """One test input: its images (label -> path relative to the page folder) and metrics."""
    name: str
    images: dict[str, str]
    metrics: dict[str, float] = field(default_factory=dict)


def write_results_page(page_dir: Path, title: str, rows: Sequence[ResultRow],
                       summary: Mapping[str, float], extra_sections: Sequence[Section] = (),
                       image_width: int = 256) -> Path:
    """The test page: summary metrics, then one block per input; returns the index.html path."""
    page = HTMLPage(page_dir, title)
    if summary:
        page.add_header("summary", level=2)
        page.add_table(summary)
    for section in extra_sections:
        page.add_section(section)
    if rows:
        page.add_header(f"results ({len(rows)} images)", level=2)
    for row in rows:
        page.add_header(row.name, level=3)
        page.add_images([[ImageCell(path, label) for label, path in row.images.items()]],
                        width=image_width)
        if row.metrics:
            page.add_table(row.metrics)
    return page.save()
