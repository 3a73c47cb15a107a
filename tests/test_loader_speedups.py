"""What the loader does faster gives the same values: checked against numpy on every 8-bit value."""
from __future__ import annotations

import numpy as np
import torch

from data.image_ops import to_unit
from data.transforms import to_signed_unit


def test_unit_conversions_equal_numpy_float32_on_every_value() -> None:
    values = np.arange(256, dtype=np.uint8).reshape(1, 16, 16)
    unit = values.astype(np.float32) / np.float32(255)
    signed = unit * np.float32(2) - np.float32(1)
    image = torch.from_numpy(values.copy())
    assert torch.equal(to_unit(image), torch.from_numpy(unit))
    assert torch.equal(to_signed_unit(image), torch.from_numpy(signed))
    # A cropped, flipped view (what augment hands over) converts the same.
    view = torch.from_numpy(np.tile(values, (3, 2, 2)))[:, 3:29, 5:30].flip(-1)
    expected = view.numpy().astype(np.float32) / np.float32(255) * np.float32(2) - np.float32(1)
    assert torch.equal(to_signed_unit(view), torch.from_numpy(expected))


def test_to_unit_never_writes_into_its_input() -> None:
    # A float input is divided in a copy too (anything but uint8 holds 16-bit samples).
    image = torch.full((1, 2, 2), 65535.0)
    out = to_unit(image)
    assert torch.equal(image, torch.full((1, 2, 2), 65535.0)) and torch.equal(out, torch.ones(1, 2, 2))
