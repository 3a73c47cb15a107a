"""Draw a run's loss curves from its ``loss_log.jsonl`` records to a PNG.

``plot_loss_curves(records, out_png)``: the training page calls it for the plot at its top, and
``plot_panels`` for its learning-rate, timing and metrics curves; ``scripts/plot_losses.py`` is
its command line.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from reporting.loss_log import loss_series


def plot_loss_curves(records: list[dict[str, Any]], out_png: Path, title: str = "") -> Path:
    """One line per loss against fractional epoch; returns the written path."""
    # The object-oriented Figure API with the Agg canvas touches no global pyplot state, so it is
    # safe from a training loop and on machines without a display.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for name, points in loss_series(records).items():
        if points:
            xs, ys = zip(*points)
            ax.plot(xs, ys, label=name, linewidth=1.2, marker="." if len(points) < 30 else None)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title(title or "loss curves")
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper right", fontsize="small")
    else:
        ax.text(0.5, 0.5, "no losses logged yet", ha="center", va="center", transform=ax.transAxes)
    return _save(fig, out_png)


# A panel: its title, then each line's name and its (x, y) points.
Panels = Mapping[str, Mapping[str, Sequence[tuple[float, float]]]]


def plot_panels(panels: Panels, out_png: Path, title: str = "") -> Path:
    """One small plot per panel, side by side (at most three to a row), each line in its own colour.

    Quantities of different scales (a learning rate and seconds, PSNR and SSIM) each get their
    own axes this way, instead of one flattening the other."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    ncols = min(3, max(len(panels), 1))
    nrows = max(1, -(-len(panels) // ncols))
    fig = Figure(figsize=(8, 2.6 * nrows + 0.4), dpi=100)
    FigureCanvasAgg(fig)
    for i, (panel_title, lines) in enumerate(panels.items()):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        for name, points in lines.items():
            if points:
                xs, ys = zip(*points)
                ax.plot(xs, ys, label=name, linewidth=1.2, marker="." if len(points) < 30 else None)
        ax.set_title(panel_title, fontsize="medium")
        ax.set_xlabel("epoch", fontsize="small")
        ax.grid(True, alpha=0.3)
        ax.tick_params(labelsize="small")
        if len(lines) > 1:
            ax.legend(fontsize="x-small")
    if title:
        fig.suptitle(title)
    return _save(fig, out_png)


def _save(fig: Any, out_png: Path) -> Path:
    fig.tight_layout()
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    # Write then rename: a browser refreshing the page never sees half a PNG.
    tmp = out_png.with_name(out_png.name + ".tmp")
    fig.savefig(tmp, format="png")
    tmp.replace(out_png)
    return out_png
