"""A line chart as inline SVG text: series of (x, y) points on shared axes, with a legend.

Drawn by hand rather than by matplotlib so the compare page stays one self-contained file
whose curves a browser (and a test) can read point by point: each series is one ``<path>``
carrying ``data-series`` and ``data-points``.
"""
from __future__ import annotations

import math
from html import escape
from typing import Mapping, Sequence

Series = Mapping[str, Sequence[tuple[float, float]]]

# Colour-blind-safe palette (Okabe-Ito), one colour per run.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
WIDTH, HEIGHT = 460, 230
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 24, 34


def colour(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def _span(values: Sequence[float]) -> tuple[float, float]:
    low, high = min(values), max(values)
    if math.isclose(low, high):
        pad = abs(low) * 0.05 or 1.0
        return low - pad, high + pad
    return low, high


def _tick(value: float) -> str:
    return f"{value:.4g}"


def line_chart(title: str, series: Series, x_label: str = "epoch") -> str:
    """The SVG of one chart; series keep the order (and so the colours) they are given in."""
    points = [p for pts in series.values() for p in pts if math.isfinite(p[0]) and math.isfinite(p[1])]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{WIDTH}" height="{HEIGHT}" '
             f'viewBox="0 0 {WIDTH} {HEIGHT}" data-title="{escape(title)}">',
             f'<text x="{LEFT}" y="16" font-size="13" font-weight="bold">{escape(title)}</text>']
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    parts.append(f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#bbb"/>')
    if not points:
        parts.append(f'<text x="{LEFT + 10}" y="{TOP + plot_h / 2}" font-size="12">no points</text></svg>')
        return "".join(parts)
    x0, x1 = _span([p[0] for p in points])
    y0, y1 = _span([p[1] for p in points])

    def sx(x: float) -> float:
        return LEFT + (x - x0) / (x1 - x0) * plot_w

    def sy(y: float) -> float:
        return TOP + plot_h - (y - y0) / (y1 - y0) * plot_h

    for value, anchor_y in ((y0, TOP + plot_h), (y1, TOP + 10)):
        parts.append(f'<text x="{LEFT - 4}" y="{anchor_y}" font-size="10" text-anchor="end">{_tick(value)}</text>')
    for value, anchor, at in ((x0, "start", LEFT), (x1, "end", LEFT + plot_w)):
        parts.append(f'<text x="{at}" y="{TOP + plot_h + 13}" font-size="10" text-anchor="{anchor}">'
                     f'{_tick(value)}</text>')
    parts.append(f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 4}" font-size="11" text-anchor="middle">'
                 f'{escape(x_label)}</text>')
    for index, (name, pts) in enumerate(series.items()):
        pts = [p for p in pts if math.isfinite(p[0]) and math.isfinite(p[1])]
        if not pts:
            continue
        d = " ".join(f"{'M' if i == 0 else 'L'}{sx(x):.2f},{sy(y):.2f}" for i, (x, y) in enumerate(pts))
        marker = "".join(f'<circle cx="{sx(x):.2f}" cy="{sy(y):.2f}" r="2" fill="{colour(index)}"/>'
                         for x, y in pts) if len(pts) < 40 else ""
        parts.append(f'<path d="{d}" fill="none" stroke="{colour(index)}" stroke-width="1.6" '
                     f'data-series="{escape(name)}" data-points="{len(pts)}"/>{marker}')
        parts.append(f'<text x="{LEFT + plot_w - 4}" y="{TOP + 14 + 13 * index}" font-size="11" '
                     f'text-anchor="end" fill="{colour(index)}">{escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)
