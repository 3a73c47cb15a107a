"""Does a configuration beat the reference? The rule the README's quality table is judged by:

- FID: the configuration's mean over seeds is at most ``FID_RATIO`` of the reference's mean;
- PSNR and SSIM (higher is better): the configuration's mean is not below the reference's mean
  by more than the seed spread, taken as the larger of the two sample standard deviations.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Sequence

FID_RATIO = 0.85            # "beats the reference by >= 15% FID"
NOT_WORSE = ("PSNR", "SSIM")


@dataclass(frozen=True)
class Verdict:
    fid_ratio: float                    # mean FID / the reference's mean FID
    shortfall: dict[str, float]         # metric -> how far below the reference's mean, in spreads
    wins: bool

    def summary(self) -> str:
        worse = [f"{m} {s:.2f} spreads below" for m, s in self.shortfall.items() if s > 1.0]
        return (f"FID x{self.fid_ratio:.2f}; " + ("; ".join(worse) if worse else "PSNR, SSIM within the spread")
                + (": wins" if self.wins else ": does not win"))


def spread(a: Sequence[float], b: Sequence[float]) -> float:
    sd = [statistics.stdev(v) for v in (a, b) if len(v) > 1]
    return max(sd) if sd else 0.0


def verdict(ours: dict[str, Sequence[float]], reference: dict[str, Sequence[float]]) -> Verdict:
    """``ours`` and ``reference``: metric -> per-seed values (FID, PSNR, SSIM)."""
    ratio = statistics.mean(ours["FID"]) / statistics.mean(reference["FID"])
    shortfall = {}
    for metric in NOT_WORSE:
        gap = statistics.mean(reference[metric]) - statistics.mean(ours[metric])
        s = spread(ours[metric], reference[metric])
        shortfall[metric] = gap / s if s > 0 else (float("inf") if gap > 0 else 0.0)
    wins = ratio <= FID_RATIO and all(v <= 1.0 for v in shortfall.values())
    return Verdict(ratio, shortfall, wins)
