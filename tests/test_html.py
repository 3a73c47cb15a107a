"""HTML pages: they parse, every image they show exists, and names cannot turn into markup."""
from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import torch
from PIL import Image

from reporting.html import HTMLPage, ImageCell, ResultRow, Section, url, write_results_page
from reporting.loss_log import LossLog
from reporting.reporter import Reporter
from reporting.sinks.html_page import HTMLPageSink, PageConfig

# File names a dataset can really have: markup, a fragment marker, a space, a query marker.
NASTY_NAMES = ["<b>x</b>#1.png", "two words.png", "what?.png", "100%.png"]


class PageParser(HTMLParser):
    """Collects tags, img sources, link targets and visible text; fails on unbalanced tables."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.srcs: list[str] = []
        self.hrefs: list[str] = []
        self.text: list[str] = []
        self.open_tables = 0

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        attrs = dict(attrs)
        if tag == "img":
            self.srcs.append(attrs["src"])
        if tag == "a":
            self.hrefs.append(attrs["href"])
        if tag == "table":
            self.open_tables += 1

    def handle_endtag(self, tag):
        if tag == "table":
            self.open_tables -= 1

    def handle_data(self, data):
        if data.strip():
            self.text.append(data.strip())


def parse(page: Path) -> PageParser:
    parser = PageParser()
    parser.feed(page.read_text(encoding="utf-8"))
    parser.close()
    assert parser.open_tables == 0
    return parser


def assert_all_images_exist(page: Path, parser: PageParser) -> None:
    assert parser.srcs, "the page shows no image"
    for src in parser.srcs + parser.hrefs:
        # A browser resolves a relative URL by unquoting it against the page's folder.
        assert "#" not in src and "?" not in src and " " not in src, src
        assert (page.parent / unquote(src)).is_file(), src


def solid_png(path: Path, colour: tuple[int, int, int], size: int = 32) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size, size), colour).save(path)
    return path


def test_url_quotes_what_would_break_a_link() -> None:
    assert url("images/<b>x</b>#1.png") == "images/%3Cb%3Ex%3C/b%3E%231.png"
    assert url("images/two words.png") == "images/two%20words.png"
    assert url("what?.png") == "what%3F.png"


def test_page_with_nasty_names_parses_and_every_image_exists(tmp_path: Path) -> None:
    for name in NASTY_NAMES:
        solid_png(tmp_path / "images" / name, (200, 30, 30))
    page = HTMLPage(tmp_path, "run <i>nasty</i> & co", refresh=5)
    page.add_header("epoch <1>")
    page.add_images([[ImageCell(f"images/{name}", name) for name in NASTY_NAMES]], width=64)
    page.add_table({"PSNR": 21.123456, "<script>": 1.0})
    saved = page.save()

    parser = parse(saved)
    assert_all_images_exist(saved, parser)
    # Markup in names stays text: no <b>, <i> or <script> element was created ...
    assert not {"b", "i", "script"} & set(parser.tags)
    # ... and the names read exactly as written.
    for expected in ["run <i>nasty</i> & co", "epoch <1>", "<b>x</b>#1.png", "<script>", "21.12"]:
        assert expected in parser.text, expected
    assert 'http-equiv="refresh"' in saved.read_text()


def test_results_page_has_summary_rows_and_extra_sections(tmp_path: Path) -> None:
    rows = []
    for i, name in enumerate(NASTY_NAMES[:2]):
        images = {}
        for label, colour in (("real_A", (0, 0, 200)), ("fake_B", (0, 200, 0))):
            rel = f"images/{label}/{name}"
            solid_png(tmp_path / rel, colour)
            images[label] = rel
        rows.append(ResultRow(name=name, images=images, metrics={"L1": 0.1 * (i + 1)}))
    solid_png(tmp_path / "layers" / "down 1.png", (9, 9, 9))
    inspect = Section("layer inspection", text="activations of the encoder",
                      image_rows=[[ImageCell("layers/down 1.png", "down 1")]],
                      table=[{"layer": "down 1", "mean": 0.5, "std": 0.25}])

    saved = write_results_page(tmp_path, "facades test", rows, {"PSNR": 20.5, "SSIM": 0.61},
                               extra_sections=[inspect])

    parser = parse(saved)
    assert_all_images_exist(saved, parser)
    assert len(parser.srcs) == 2 * 2 + 1
    for expected in ["PSNR", "20.5", "layer inspection", "down 1", "<b>x</b>#1.png", "two words.png",
                     "real_A", "fake_B", "0.2"]:
        assert expected in parser.text, expected
    assert "b" not in parser.tags


def test_training_page_shows_loss_plot_then_epochs_newest_first(tmp_path: Path) -> None:
    with LossLog(tmp_path / "loss_log.jsonl") as log:
        for step in range(1, 5):
            log.append({"epoch": 1, "epoch_iter": step, "step": step, "epoch_frac": step / 4,
                        "lr": 2e-4, "time_per_sample": 0.01,
                        "losses": {"G_GAN": 1.0 / step, "D_real": 0.5}})
    vis = Reporter([HTMLPageSink(PageConfig(name="tiny #1", exp_dir=tmp_path, winsize=64))])
    visuals = {"real_A": torch.zeros(2, 1, 16, 16), "fake_B": torch.ones(2, 3, 16, 16),
               "real_B": -torch.ones(2, 3, 16, 16)}
    for epoch in (1, 2, 3):
        vis.report_images(visuals, epoch=epoch, step=epoch * 4, snapshot=True)
    vis.close()

    saved = tmp_path / "web" / "index.html"
    parser = parse(saved)
    assert_all_images_exist(saved, parser)
    # The curves first: the losses, then the learning rate and timings (both in the log).
    assert parser.srcs[:2] == ["loss_curves.png", "schedule_curves.png"]
    assert parser.srcs[2:] == [f"images/epoch{e:03d}_{label}.png"
                               for e in (3, 2, 1) for label in ("real_A", "fake_B", "real_B")]
    # The grey (C=1) input was saved as RGB mid-grey; fake_B white, real_B black.
    assert Image.open(tmp_path / "web/images/epoch001_real_A.png").getpixel((0, 0)) == (128, 128, 128)
    assert Image.open(tmp_path / "web/images/epoch001_fake_B.png").getpixel((5, 5)) == (255, 255, 255)
    assert "Experiment name = tiny #1" in parser.text
