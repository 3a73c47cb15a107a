"""Which way each quality measure improves, read from the metrics registry
(reporting/metrics.py): what the compare page's "best" marks and ``--best_metric`` use."""
from __future__ import annotations

from typing import Sequence

from reporting.metrics import METRICS

# metric (as test.py and validation name it) -> True when a higher value is better
HIGHER_IS_BETTER: dict[str, bool] = {e.name: e.obj.higher_is_better for e in METRICS}


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
