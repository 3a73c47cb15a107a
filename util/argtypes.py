"""argparse types for numbers, one home for every layer and tool (standard library only, so
compare.py and the data tools start fast; util/ may be imported from everywhere).

Each raises ``argparse.ArgumentTypeError``, so argparse prints one line, "argument --x: must be
..., got ..."; from a ValueError it would name the function instead ("invalid positive_int value").
"""
from __future__ import annotations

import argparse
from typing import Callable, TypeVar

Number = TypeVar("Number", int, float)


def _parse(text: str, kind: Callable[[str], Number], wanted: str) -> Number:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {wanted}, got '{text}'") from None


def positive_int(text: str) -> int:
    value = _parse(text, int, "a positive integer")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def non_negative_int(text: str) -> int:
    value = _parse(text, int, "0 or more")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def positive_float(text: str) -> float:
    value = _parse(text, float, "a positive number")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def non_negative_float(text: str) -> float:
    value = _parse(text, float, "0 or more")
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def int_range(minimum: int | None = None, maximum: int | None = None) -> Callable[[str], int]:
    """An integer type with bounds (None: unbounded on that side)."""
    if minimum is None and maximum is None:
        wanted = ""
    elif maximum is None:
        wanted = f"at least {minimum}"
    elif minimum is None:
        wanted = f"at most {maximum}"
    else:
        wanted = f"between {minimum} and {maximum}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got '{text}'") from None
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {text}")
        return value
    parse.__name__ = "int"   # what argparse and --help call the type
    return parse


# A TCP port (serve.py's --port, visdom's --display_port).
port_number = int_range(1, 65535)
