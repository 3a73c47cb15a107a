"""What every display receives, and the registry that the displays enter themselves in.

The training loop reports to one ``Reporter`` (reporting/reporter.py), which hands each report
to every display that the options switched on: the loss log, visdom, the HTML page,
TensorBoard, W&B. A display is a ``Sink``: one file in ``reporting/sinks/`` that registers a
``SinkSpec`` (its command-line flags, and how to build it from them) in ``SINKS``. Adding a
display is that one file; nothing else names the backends.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

import torch

from reporting.result_files import shown_channels

from util.registry import Registry


@dataclass(frozen=True)
class TrainPoint:
    """One logging point of the training loop: the losses, the learning rate and the timings."""
    epoch: int
    epoch_iter: int              # samples into the epoch, all processes together
    step: int                    # optimization steps so far
    epoch_frac: float            # the x axis of the curves: epochs done, fractional
    lr: float
    losses: Mapping[str, float]
    timings: Mapping[str, float] = field(default_factory=dict)   # seconds, e.g. time_per_sample

    def scalars(self) -> dict[str, float]:
        """Tagged values for displays that keep one flat list of named curves."""
        tagged = {f"loss/{name}": float(value) for name, value in self.losses.items()}
        tagged["lr"] = float(self.lr)
        tagged.update({f"time/{name}": float(value) for name, value in self.timings.items()})
        return tagged


@dataclass(frozen=True)
class MetricsPoint:
    """Figures measured on a split (e.g. validation L1, PSNR, SSIM, FID) at a training step."""
    step: int
    epoch: int
    epoch_frac: float
    split: str
    metrics: Mapping[str, float]

    def scalars(self) -> dict[str, float]:
        return {f"{self.split}/{name}": float(value) for name, value in self.metrics.items()}


@dataclass(frozen=True)
class ImagesPoint:
    """The first sample of each current visual, (C, H, W) in [-1, 1] with C = 1 or 3.

    ``snapshot`` asks the displays that keep a history of images (the HTML page) to keep this
    one (--update_html_freq); ``live``, the displays that show the current images (visdom,
    TensorBoard, W&B) to show it (--display_freq). Each display acts on its own flag only."""
    epoch: int
    step: int
    images: Mapping[str, torch.Tensor]
    snapshot: bool
    live: bool = True


class Sink:
    """A display. Each method is called on the main process only; the defaults ignore the report."""

    def resume(self, step: int) -> None:
        """The run resumes from a checkpoint at ``step``: called once, before any report, so a
        display that keeps the run's history can drop what came after that step (written by a
        process killed later, or before a resume from an earlier checkpoint) or show it again."""

    def scalars(self, point: TrainPoint) -> None:
        pass

    def metrics(self, point: MetricsPoint) -> None:
        pass

    def images(self, point: ImagesPoint) -> None:
        pass

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class SinkSpec:
    """How a display enters the command line and is built from it.

    ``build`` reads the display's own flags (and ``name``) from the parsed options and returns
    None when they leave it off. ``order``: sinks are called in increasing order, so a display
    that reads another's file back (the page draws its curves from the loss log) comes after it.
    ``check``: a refusal the display can make when the options are parsed (a package it needs
    is missing), so that it comes before the run touches its folder. ``outputs``: the names it
    writes in the experiment folder (a fresh run moves an earlier run's aside: engine/run_folder.py)."""
    add_options: Callable[[argparse._ArgumentGroup], None]
    build: Callable[[argparse.Namespace, Path], "Sink | None"]
    order: int = 50
    check: Callable[[argparse.Namespace], "str | None"] | None = None
    outputs: tuple[str, ...] = ()


def display_outputs() -> list[str]:
    """What every display (switched on or not) writes in an experiment folder."""
    import reporting.sinks  # noqa: F401 - fills SINKS with every display in reporting/sinks/

    return [name for entry in SINKS for name in entry.obj.outputs]


def display_problem(opt: argparse.Namespace) -> str | None:
    """The first refusal of a display the options switch on (see ``SinkSpec.check``)."""
    import reporting.sinks  # noqa: F401 - fills SINKS with every display in reporting/sinks/

    for entry in SINKS:
        problem = entry.obj.check(opt) if entry.obj.check is not None else None
        if problem:
            return problem
    return None


SINKS: Registry[SinkSpec] = Registry("display sink")


def first_samples(visuals: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The first sample of each (N, C, H, W) visual, checked to be an image a display can show."""
    firsts = {}
    for label, batch in visuals.items():
        image = shown_channels(batch[0])
        if image.dim() != 3 or image.shape[0] not in (1, 3):
            raise ValueError(f"visual '{label}': expected a (C, H, W) image with C = 1 or 3, "
                             f"got shape {tuple(image.shape)}")
        firsts[label] = image.detach()
    return firsts


def to_unit_rgb(image: torch.Tensor) -> torch.Tensor:
    """(C, H, W) in [-1, 1], C = 1 or 3 -> (3, H, W) float32 in [0, 1] on the CPU."""
    shown = (image.detach().float().cpu().clamp(-1, 1) + 1) / 2
    return shown.expand(3, -1, -1) if shown.shape[0] == 1 else shown
