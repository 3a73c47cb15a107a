"""options/configs.data_config: the options a dataset reads, as one DataConfig; a data option is a
DataConfig field plus a flag of that name, with no copy to keep in step."""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import pytest

import options.configs as configs
from data.config import DataConfig
from options.parse import parse_options


def test_every_field_by_hand_at_train_and_at_test_time(tmp_path: Path) -> None:
    typed = ["--dataroot", str(tmp_path), "--gpu_ids", "-1", "--netG", "unet_128", "--direction", "BtoA",
             "--input_nc", "1", "--preprocess", "crop", "--load_size", "160", "--crop_size", "128",
             "--max_dataset_size", "7", "--skip_bad_images", "--cache_dataset", "--shard_cache", str(tmp_path / "c")]
    expected = DataConfig(dataroot=tmp_path, phase="train", direction="BtoA", input_nc=1, output_nc=3,
                          preprocess="crop", load_size=160, crop_size=128, no_flip=False, max_dataset_size=7,
                          size_divisor=128, skip_bad_images=True, cache=True, shard_cache=tmp_path / "c")
    train = parse_options([*typed, "--no_flip", "--display_id", "0"], is_train=True)
    assert configs.data_config(train) == dataclasses.replace(expected, no_flip=True)
    assert configs.data_config(train, phase="val") == dataclasses.replace(expected, no_flip=True, phase="val")
    test = parse_options(typed, is_train=False)
    # test time never flips, and reads its own --phase (test by default)
    assert configs.data_config(test) == dataclasses.replace(expected, phase="test", no_flip=True)


def test_a_new_data_field_is_filled_from_its_option(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    @dataclasses.dataclass(frozen=True)
    class WithInvert(DataConfig):
        invert_A: bool = False

    monkeypatch.setattr(configs, "DataConfig", WithInvert)
    opt = argparse.Namespace(**vars(parse_options(["--dataroot", str(tmp_path), "--gpu_ids", "-1"], is_train=False)),
                             invert_A=True)
    assert configs.data_config(opt).invert_A is True
