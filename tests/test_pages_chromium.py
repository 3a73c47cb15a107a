"""A real browser shows the pages: images load (checked by pixel colour) and names stay text."""
from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from reporting.html import ResultRow, write_results_page
from reporting.loss_log import LossLog
from reporting.reporter import Reporter
from reporting.sinks.html_page import HTMLPageSink, PageConfig

RED, BLUE, GREEN = (230, 20, 20), (20, 20, 230), (20, 200, 20)
MARKUP_NAME = "<b>x</b>#1.png"


def pixels_near(screenshot: Path, colour: tuple[int, int, int], tolerance: int = 12) -> int:
    pixels = np.asarray(Image.open(screenshot).convert("RGB")).astype(int)
    return int((np.abs(pixels - np.array(colour)).max(axis=-1) <= tolerance).sum())


class DomText(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)

    def handle_data(self, data):
        if data.strip():
            self.text.append(data.strip())


def test_results_page_shows_images_and_markup_names_as_text(chromium, tmp_path: Path) -> None:
    web = tmp_path / "results"
    rows = []
    for name, colour in ((MARKUP_NAME, RED), ("two words?.png", BLUE)):
        path = web / "images" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (32, 32), colour).save(path)
        rows.append(ResultRow(name=name, images={"fake_B": f"images/{name}"}, metrics={"L1": 0.5}))
    page = write_results_page(web, "results", rows, {"PSNR": 20.0}, image_width=128)

    shot = chromium.screenshot(page, tmp_path / "results.png")
    # Each 32 px image drawn 128 px wide: 128 x 128 pixels of its colour when it loaded, none when
    # the browser shows a broken-image icon instead.
    for colour in (RED, BLUE):
        assert pixels_near(shot, colour) >= 0.9 * 128 * 128, colour

    dom = DomText()
    dom.feed(chromium.dump_dom(page))
    assert "b" not in dom.tags  # the browser built no <b> element from the file name ...
    assert MARKUP_NAME in dom.text  # ... and shows it as the characters it is


def test_training_page_shows_loss_plot_and_snapshots(chromium, tmp_path: Path) -> None:
    with LossLog(tmp_path / "loss_log.jsonl") as log:
        for step in range(1, 6):
            log.append({"epoch": 1, "epoch_iter": step, "step": step, "epoch_frac": step / 5,
                        "lr": 2e-4, "time_per_sample": 0.01, "losses": {"G_L1": 1.0 / step}})
    vis = Reporter([HTMLPageSink(PageConfig(name="run #1", exp_dir=tmp_path, winsize=96))])
    green = torch.tensor([c / 127.5 - 1 for c in GREEN]).view(1, 3, 1, 1).expand(1, 3, 32, 32)
    vis.report_images({"fake_B": green}, epoch=1, step=5, snapshot=True)
    vis.close()

    shot = chromium.screenshot(tmp_path / "web" / "index.html", tmp_path / "train.png")
    assert pixels_near(shot, GREEN, tolerance=3) >= 0.9 * 96 * 96
    # The loss plot drew its line in matplotlib's first colour.
    assert pixels_near(shot, (0x1F, 0x77, 0xB4), tolerance=40) > 50
