"""Whole-number option types, without torch (compare.py and the data tools start fast)."""
from __future__ import annotations

import argparse


def _whole(text: str, wanted: str) -> int:
    # argparse would name the type function in its message ("invalid positive_int value").
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {wanted}, got '{text}'") from None


def positive_int(text: str) -> int:
    value = _whole(text, "a positive integer")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def non_negative_int(text: str) -> int:
    value = _whole(text, "0 or more")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value
