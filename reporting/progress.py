"""A tqdm bar per epoch in a terminal (ETA and current losses); silent when not a TTY."""
from __future__ import annotations

import sys
from typing import Any, Mapping


class EpochProgress:
    def __init__(self, total: int, epoch: int, last_epoch: int, enabled: bool = True) -> None:
        self._bar: Any = None
        if enabled and sys.stderr.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=f"epoch {epoch}/{last_epoch}", unit="batch", dynamic_ncols=True,
                             leave=False)

    def update(self) -> None:
        if self._bar is not None:
            self._bar.update(1)

    def show_losses(self, losses: Mapping[str, float]) -> None:
        if self._bar is not None:
            self._bar.set_postfix({k: f"{v:.3f}" for k, v in losses.items()}, refresh=False)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
