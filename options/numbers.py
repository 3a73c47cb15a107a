"""Whole-number option types, without torch (compare.py and the data tools start fast): the
options' names for util/argtypes.py's, which every layer shares."""
from __future__ import annotations

from util.argtypes import non_negative_int, positive_int

__all__ = ["non_negative_int", "positive_int"]
