"""Weights & Biases (``--use_wandb``): the curves, the metrics, image grids and the options.

Offline unless asked otherwise, so that it works on machines without network: the run is
written under ``<experiment>/wandb/`` and uploaded later with ``wandb sync <run folder>`` (the
log says which). The mode is ``--wandb_mode``, else ``$WANDB_MODE``, else offline. Like the live
display, W&B is never a reason for training to stop: a missing package, a failed start or a
failed write costs one warning, and the run goes on without it.

History keys (x axis: the optimization step, W&B's ``_step``): ``loss/<name>``, ``lr``,
``time/<name>``, ``epoch`` (fractional), ``<split>/<metric>`` and ``images``.

A resumed training run goes on in the same W&B run: its id is kept in ``<experiment>/wandb/``
(``RUN_ID_FILE``; a fresh run moves that folder aside with the rest) and the resume starts
W&B with it (``resume="allow"``). Offline, each process writes its own ``offline-run-*-<id>``
folder; ``wandb sync`` uploads the folders of one id as one run, in order of time. W&B takes
each step once: the steps a killed process had already logged beyond its checkpoint keep that
process's values there (the loss log, the page and TensorBoard hold the resumed run's).
"""
from __future__ import annotations

import argparse
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch

from reporting.images import tile_row
from reporting.sink import SINKS, ImagesPoint, MetricsPoint, Sink, SinkSpec, TrainPoint, to_unit_rgb

log = logging.getLogger(__name__)

MODES = ("offline", "online")
INSTALL_HINT = "pip install wandb"
FOLDER = "wandb"                 # wandb.init(dir=<experiment>) writes its runs here (W&B's name)
RUN_ID_FILE = "pix2pix_run_id"   # in FOLDER: the training run's W&B id, for its resumes


@dataclass(frozen=True)
class WandbConfig:
    project: str
    name: str
    run_dir: Path                          # wandb/ is made inside it
    mode: str = "offline"
    entity: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)   # shown as the run's config
    job_type: str = "train"                                    # "test" for test.py's runs
    keep_id: bool = False          # training: a resume (Sink.resume) goes on in the same W&B run


def resolve_mode(flag: str | None, environ: Mapping[str, str] = os.environ) -> str:
    """--wandb_mode if given, else $WANDB_MODE if set, else offline (no network needed)."""
    return flag or environ.get("WANDB_MODE") or "offline"


class WandbSink(Sink):
    def __init__(self, cfg: WandbConfig) -> None:
        self.cfg = cfg
        self._run: Any | None = None
        self._pending = False          # W&B starts at the first use, once a resume has said so
        self._resumed = False
        try:
            import wandb
        except ImportError:
            log.warning("--use_wandb: the wandb package is not installed (%s); going on without W&B", INSTALL_HINT)
            return
        self._wandb = wandb
        self._pending = True

    def resume(self, step: int) -> None:
        self._resumed = True

    def _start(self) -> None:
        if not self._pending:
            return
        self._pending = False
        cfg, wandb = self.cfg, self._wandb
        id_file = cfg.run_dir / FOLDER / RUN_ID_FILE
        run_id = id_file.read_text().strip() if cfg.keep_id and self._resumed and id_file.is_file() else None
        cfg.run_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._run = wandb.init(
                project=cfg.project, entity=cfg.entity, name=cfg.name, dir=str(cfg.run_dir), mode=cfg.mode,
                config=_plain(cfg.options), reinit="create_new", job_type=cfg.job_type,
                id=run_id, resume="allow" if run_id else None,
                # No capture of the console (the training log is ours) and no code or git snapshot.
                settings=wandb.Settings(silent=True, console="off", save_code=False, disable_git=True))
        except Exception as err:  # noqa: BLE001 - W&B's many failure types all mean "no W&B"
            log.warning("W&B could not start (%s: %s); going on without W&B", type(err).__name__, err)
            return
        if cfg.keep_id and run_id is None:
            id_file.write_text(f"{self._run.id}\n")
        going_on = f"going on with W&B run {run_id}; " if run_id else ""
        if cfg.mode == "offline":
            sync_dir = self._run.settings.sync_dir
            log.info("W&B logs offline to %s; %supload it later with: wandb sync %s", sync_dir, going_on,
                     Path(sync_dir).parent / f"offline-run-*-{self._run.id}" if run_id else sync_dir)
        else:
            log.info("W&B run: %s%s", going_on, self._run.url)

    @property
    def active(self) -> bool:
        self._start()
        return self._run is not None

    @property
    def wandb(self) -> Any:
        """The wandb module (only while ``active``), for payloads such as tables and images."""
        return self._wandb

    def scalars(self, point: TrainPoint) -> None:
        self._log({**point.scalars(), "epoch": point.epoch_frac}, point.step)

    def log(self, values: dict[str, Any], step: int = 0) -> None:
        """Any record (test.py's results table); a failure costs one warning, as for the others."""
        self._log(values, step)

    def metrics(self, point: MetricsPoint) -> None:
        self._log(point.scalars(), point.step)

    def images(self, point: ImagesPoint) -> None:
        if not point.live or not self.active:
            return
        shown = [to_unit_rgb(image) for image in point.images.values()]
        caption = " | ".join(point.images)
        if len({tuple(image.shape) for image in shown}) == 1:
            grid = [self._wandb.Image(_hwc_uint8(tile_row(torch.stack(shown), padding=2)), caption=caption)]
        else:  # visuals of different sizes cannot share a row: one image each
            grid = [self._wandb.Image(_hwc_uint8(image), caption=label) for label, image in zip(point.images, shown)]
        self._log({"images": grid}, point.step)

    def _log(self, values: dict[str, Any], step: int) -> None:
        if not self.active:
            return
        try:
            self._run.log(values, step=step)
        except Exception as err:  # noqa: BLE001 - a broken W&B costs one warning, never the run
            log.warning("W&B stopped taking records (%s: %s); going on without W&B", type(err).__name__, err)
            self._finish()

    def close(self) -> None:
        self._pending = False
        self._finish()

    def _finish(self) -> None:
        run, self._run = self._run, None
        if run is None:
            return
        try:
            run.finish()
        except Exception as err:  # noqa: BLE001
            log.warning("W&B could not close its run cleanly (%s: %s)", type(err).__name__, err)


def _hwc_uint8(image: torch.Tensor) -> Any:
    """(3, H, W) in [0, 1] -> (H, W, 3) uint8, the array layout wandb.Image takes."""
    return (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


def _plain(options: Mapping[str, Any]) -> dict[str, Any]:
    """Options as W&B config values: numbers, strings, booleans, lists; anything else as text."""
    plain = {}
    for key, value in options.items():
        if isinstance(value, (bool, int, float, str)) or value is None:
            plain[key] = value
        elif isinstance(value, (list, tuple)) and all(isinstance(v, (bool, int, float, str)) for v in value):
            plain[key] = list(value)
        else:
            plain[key] = str(value)
    return plain


def add_wandb_options(g: argparse._ArgumentGroup, what: str = "curves, metrics, images and the options") -> None:
    g.add_argument("--use_wandb", action="store_true", help=f"also log {what} to Weights & Biases")
    # --wandb_project_name: the reference implementation's spelling of the same flag.
    g.add_argument("--wandb_project", "--wandb_project_name", default="pix2pix",
                   help="W&B project (the run is named after --name)")
    g.add_argument("--wandb_entity", default=None, help="W&B user or team (default: your W&B default)")
    g.add_argument("--wandb_mode", choices=MODES, default=None,
                   help="offline: write the run to <experiment>/wandb for `wandb sync` later; online: upload "
                        "as it runs (default: $WANDB_MODE if set, else offline)")


def config_from(opt: argparse.Namespace, exp_dir: Path, job_type: str = "train") -> WandbConfig:
    options = {k: v for k, v in vars(opt).items() if not k.startswith("_")}
    return WandbConfig(project=opt.wandb_project, name=opt.name, run_dir=exp_dir, entity=opt.wandb_entity,
                       mode=resolve_mode(opt.wandb_mode), options=options, job_type=job_type,
                       keep_id=job_type == "train")


def _build(opt: argparse.Namespace, exp_dir: Path) -> Sink | None:
    return WandbSink(config_from(opt, exp_dir)) if opt.use_wandb else None


SINKS.add("wandb", SinkSpec(add_wandb_options, _build, order=40, outputs=(FOLDER,)), help="--use_wandb")
