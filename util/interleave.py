"""The order in which interleaved measurements run their candidates, round after round.

Timings on a shared machine drift with the load; running every candidate once per round, in
an order rotated by one each round, spreads that drift over all of them alike, and over as
many rounds as candidates each one runs once in every position: none always runs first (after
whatever the previous round left in the caches) or always last. ``--amp auto``'s probe and the
benchmarks all take their order from here. No torch: benchmarks/vs_reference.py imports it
without loading torch.
"""
from __future__ import annotations

from typing import Sequence


def rotated(names: Sequence[str], round_: int) -> list[str]:
    """``names`` in the order of round ``round_`` (0-based): rotated left by ``round_``."""
    shift = round_ % len(names)
    return [*names[shift:], *names[:shift]]
