"""Optional TensorBoard mirror of the loss log and the current images (``--use_tensorboard``).

``torch.utils.tensorboard`` needs the separate ``tensorboard`` package, which GPU images often
lack, so it is imported only when asked for and its absence is one clear error.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Mapping

import torch

from util.errors import UserError

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install tensorboard"


class TensorBoardMissingError(UserError, RuntimeError):
    """--use_tensorboard was given but the tensorboard package cannot be imported."""


class TensorBoardLogger:
    """Scalars and images into ``log_dir`` (view with ``tensorboard --logdir <log_dir>``)."""

    def __init__(self, log_dir: Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as err:  # raised by torch when the tensorboard package is missing
            raise TensorBoardMissingError(
                f"--use_tensorboard: the tensorboard package is not installed ({INSTALL_HINT}), "
                f"or drop --use_tensorboard") from err
        self.log_dir = Path(log_dir)
        self._writer = SummaryWriter(log_dir=str(self.log_dir))

    def scalars(self, values: Mapping[str, float], step: int, prefix: str = "loss/") -> None:
        for name, value in values.items():
            self._writer.add_scalar(prefix + name, float(value), global_step=step)

    def images(self, images: Mapping[str, torch.Tensor], step: int, prefix: str = "images/") -> None:
        """Each value is one (C, H, W) image in [-1, 1] with C = 1 or 3."""
        for name, image in images.items():
            shown = ((image.detach().float().cpu().clamp(-1, 1) + 1) / 2)
            self._writer.add_image(prefix + name, shown, global_step=step, dataformats="CHW")

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()
