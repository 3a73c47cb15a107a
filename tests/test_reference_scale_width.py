"""--preprocess scale_width and scale_width_and_crop size images with the reference's
arithmetic: height = int(max(load_size * h / w, crop_size)), truncated, not rounded. The
expected sizes below are worked out by hand."""
from __future__ import annotations

from pathlib import Path

import pytest

from data import DataConfig
from data.transforms import PREPROCESS_MODES


def resize_to(preprocess: str, h: int, w: int, load_size: int, crop_size: int, size_divisor: int = 4) -> tuple:
    cfg = DataConfig(Path("."), load_size=load_size, crop_size=crop_size, size_divisor=size_divisor,
                     preprocess=preprocess)
    return PREPROCESS_MODES.get(preprocess).resize_to(cfg, h, w)


@pytest.mark.parametrize("h,w,load,crop,expected", [
    (201, 300, 143, 64, (95, 143)),     # 143 * 201 / 300 = 95.81: 95 (rounding gave 96)
    (250, 300, 143, 64, (119, 143)),    # 119.17
    (256, 256, 143, 64, (143, 143)),
    (299, 400, 286, 256, (256, 286)),   # 213.785 is below crop_size: 256
    (8, 64, 48, 32, (32, 48)),          # 6: a wide image stays croppable
    (377, 500, 286, 256, (256, 286)),   # 215.644
    (607, 500, 286, 256, (347, 286)),   # 347.204
    (599, 400, 286, 256, (428, 286)),   # 428.285 (rounding gave 428 too)
    (431, 400, 286, 256, (308, 286)),   # 308.165
    (213, 200, 286, 256, (304, 286)),   # 304.59: 304 (rounding gave 305)
])
def test_scale_width_and_crop_truncates_as_the_reference(h: int, w: int, load: int, crop: int,
                                                        expected: tuple) -> None:
    assert resize_to("scale_width_and_crop", h, w, load, crop) == expected


@pytest.mark.parametrize("h,w,load,crop,expected", [
    # The reference's height, then both sides to the nearest multiple of 4 (the generator's).
    (213, 200, 286, 256, (304, 288)),   # 304.59 -> 304 -> 304; 286 -> 288
    (20, 64, 48, 32, (32, 48)),         # 15 is below crop_size: 32 (without the floor: 16)
    (37, 50, 30, 16, (24, 32)),         # 22.2 -> 22 -> 24; 30 -> 32
    (150, 200, 256, 64, (192, 256)),    # exactly 192
])
def test_plain_scale_width_takes_the_reference_height_then_the_generator_multiple(
        h: int, w: int, load: int, crop: int, expected: tuple) -> None:
    assert resize_to("scale_width", h, w, load, crop) == expected
