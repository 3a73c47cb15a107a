"""data/image_ops.py (what replaced torchvision) against PIL, numpy and hand computations."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from data.image_ops import crop, hflip, pil_to_uint8_tensor, resize_bicubic, to_unit
from data.transforms import Geometry, to_signed_unit
from reporting.images import tile_row

FACADES = Path(__file__).resolve().parent / "fixtures" / "facades"   # real photos, a handful


@pytest.mark.parametrize("size", [(286, 572), (128, 256), (300, 500)])
def test_uint8_resize_matches_pils_bicubic_on_real_photos(size: tuple[int, int]) -> None:
    for name in ("train/1.jpg", "train/10.jpg", "test/100.jpg"):
        with Image.open(FACADES / name) as img:
            photo = img.convert("RGB")
        expected = np.asarray(photo.resize(size[::-1], Image.Resampling.BICUBIC)).astype(int)
        ours = resize_bicubic(pil_to_uint8_tensor(photo), size)
        assert ours.dtype == torch.uint8 and tuple(ours.shape) == (3, *size)
        diff = np.abs(ours.permute(1, 2, 0).numpy().astype(int) - expected)
        assert diff.max() <= 2 and (diff > 0).mean() < 0.005


def test_float_resize_keeps_a_linear_ramp_and_a_constant() -> None:
    # Bicubic interpolation reproduces linear functions exactly away from the borders, and any
    # resize of a constant image is that constant.
    ramp = torch.arange(16, dtype=torch.float64).view(1, 1, 16).expand(2, 16, 16).clone()
    up = resize_bicubic(ramp, (32, 32))
    centres = (torch.arange(32, dtype=torch.float64) + 0.5) / 2 - 0.5   # output pixel centres in input pixels
    torch.testing.assert_close(up[0, 8, 4:-4], centres[4:-4], rtol=0, atol=1e-9)
    flat = torch.full((3, 20, 30), 0.25)
    torch.testing.assert_close(resize_bicubic(flat, (7, 11)), torch.full((3, 7, 11), 0.25))


def test_resize_to_the_same_size_is_the_same_tensor_and_batches_keep_their_shape() -> None:
    image = torch.randint(0, 256, (3, 8, 8), dtype=torch.uint8)
    assert resize_bicubic(image, (8, 8)) is image
    batch = torch.rand(2, 3, 8, 8)
    out = resize_bicubic(batch, (4, 6))
    assert out.shape == (2, 3, 4, 6)
    torch.testing.assert_close(out[1], resize_bicubic(batch[1], (4, 6)))


def test_other_integer_types_go_through_float_and_are_rounded_and_clamped() -> None:
    image = torch.tensor([[[0, 255, 0, 255], [255, 0, 255, 0]]], dtype=torch.int16)
    out = resize_bicubic(image, (4, 8))
    expected = resize_bicubic(image.float(), (4, 8)).round().clamp(-32768, 32767).to(torch.int16)
    assert out.dtype == torch.int16 and torch.equal(out, expected)


def test_crop_flip_and_conversions_against_numpy() -> None:
    array = np.random.default_rng(0).integers(0, 256, (6, 9, 3), dtype=np.uint8)
    tensor = pil_to_uint8_tensor(Image.fromarray(array))
    assert tensor.is_contiguous() and torch.equal(tensor, torch.from_numpy(array).permute(2, 0, 1))
    gray = pil_to_uint8_tensor(Image.fromarray(array[:, :, 0], mode="L"))
    assert gray.shape == (1, 6, 9) and torch.equal(gray[0], torch.from_numpy(array[:, :, 0]))
    assert torch.equal(crop(tensor, 1, 2, 3, 4), torch.from_numpy(array[1:4, 2:6]).permute(2, 0, 1))
    assert torch.equal(hflip(tensor), torch.from_numpy(array[:, ::-1].copy()).permute(2, 0, 1))
    with pytest.raises(ValueError, match="does not fit in a 6x9 image"):
        crop(tensor, 4, 0, 3, 3)
    torch.testing.assert_close(to_unit(tensor), torch.from_numpy(array.astype(np.float32) / 255).permute(2, 0, 1))
    torch.testing.assert_close(to_signed_unit(tensor), torch.from_numpy(array).permute(2, 0, 1) / 127.5 - 1)


def test_geometry_draws_every_offset_and_both_flips_from_the_seed_alone() -> None:
    geometry = Geometry(resize_to=None, crop_size=4, flip=True)
    draws = [geometry.draw(6, 7, seed) for seed in range(400)]
    assert draws == [geometry.draw(6, 7, seed) for seed in range(400)]        # the seed decides
    tops, lefts, flips = zip(*draws)
    assert set(tops) == {0, 1, 2} and set(lefts) == {0, 1, 2, 3}
    assert 0.4 < np.mean(flips) < 0.6
    image = torch.arange(6 * 7, dtype=torch.uint8).view(1, 6, 7)
    a, b = geometry([image, image.clone()], seed=3)
    top, left, flipped = geometry.draw(6, 7, 3)
    window = image[:, top:top + 4, left:left + 4]
    assert torch.equal(a, b) and torch.equal(a, window.flip(-1) if flipped else window)
    with pytest.raises(ValueError, match="crop size 8 is larger than the image"):
        Geometry(resize_to=None, crop_size=8, flip=False)([image], seed=0)


def test_tile_row_lays_tiles_left_to_right_in_a_frame() -> None:
    tiles = torch.stack([torch.full((1, 2, 3), float(i)) for i in range(3)])
    row = tile_row(tiles, padding=1, pad_value=9.0)
    assert row.shape == (1, 4, 13)
    expected = np.full((4, 13), 9.0)
    for i in range(3):
        expected[1:3, 1 + 4 * i:4 + 4 * i] = i
    np.testing.assert_array_equal(row[0].numpy(), expected)
