"""options/validate.py takes what each --preprocess mode does from the preprocess registry
(data/transforms.py), so a new mode is checked the day it is registered."""
from __future__ import annotations

import argparse

import pytest

from data import PREPROCESS_MODES
from options.validate import first_problem


def _opt(preprocess: str, crop_size: int, load_size: int) -> argparse.Namespace:
    return argparse.Namespace(preprocess=preprocess, crop_size=crop_size, load_size=load_size, netG="unet_256",
                              model="pix2pix", input_nc=3, output_nc=3)


@pytest.mark.parametrize("name", PREPROCESS_MODES.names())
def test_size_checks_follow_the_registry(name: str):
    mode = PREPROCESS_MODES.get(name)
    problem = first_problem(_opt(name, 200, 286))   # neither side a multiple of unet_256's 256
    if mode.crops:
        assert problem.startswith("--crop_size 200 does not fit --netG unet_256")
    elif mode.uses_load_size:
        assert problem.startswith("--load_size 286 does not fit --netG unet_256")
    else:
        assert problem is None   # the image is resized to a size the generator takes
    too_big = first_problem(_opt(name, 512, 256))
    if mode.crops and mode.uses_load_size:
        assert too_big == (f"--crop_size 512 is larger than --load_size 256; with --preprocess {name} "
                           "the crop is taken from the resized image")
    else:
        assert too_big is None or "larger than" not in too_big
    assert first_problem(_opt(name, 256, 256)) is None
