"""Which way each quality measure improves: the one table that the compare page's "best" marks
and ``--best_metric`` read."""
from __future__ import annotations

from typing import Sequence

# metric (as test.py and validation name it) -> True when a higher value is better
HIGHER_IS_BETTER: dict[str, bool] = {
    "L1": False,     # mean absolute difference of the 8-bit pixels, in [0, 1]
    "PSNR": True,    # dB
    "SSIM": True,
    "FID": False,
    "KID": False,
}


def metric_key(name: str) -> str:
    """A user's spelling (``fid``, ``psnr``) -> the key in the metrics dicts (``FID``, ``PSNR``)."""
    key = name.upper()
    if key not in HIGHER_IS_BETTER:
        raise ValueError(f"unknown metric '{name}' (one of {', '.join(m.lower() for m in HIGHER_IS_BETTER)})")
    return key


def is_better(metric: str, value: float, than: float | None) -> bool:
    """Is ``value`` strictly better than ``than`` (None: nothing yet)?"""
    if than is None:
        return True
    return value > than if HIGHER_IS_BETTER[metric] else value < than


def best_positions(metric: str, values: Sequence[float | None]) -> list[int]:
    """Where the best of ``values`` is (ties all marked); None entries are missing figures."""
    present = [v for v in values if v is not None]
    if not present or metric not in HIGHER_IS_BETTER:
        return []
    best = max(present) if HIGHER_IS_BETTER[metric] else min(present)
    return [i for i, v in enumerate(values) if v is not None and v == best]
