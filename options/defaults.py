"""Per-model and demo defaults, as plain data applied before the command line is read.

Anything typed on the command line wins over these.
"""
from __future__ import annotations

from typing import Any

from data.colorization import INPUT_NC, OUTPUT_NC

MODEL_DEFAULTS: dict[str, dict[str, Any]] = {
    "pix2pix": {"netG": "unet_256", "norm": "batch", "dataset_mode": "aligned", "gan_mode": "vanilla",
                "pool_size": 0, "lambda_L1": 100.0},
    "colorization": {"netG": "unet_256", "norm": "batch", "dataset_mode": "colorization", "gan_mode": "vanilla",
                     "pool_size": 0, "lambda_L1": 100.0, "input_nc": INPUT_NC, "output_nc": OUTPUT_NC},
    # Inference with the generator alone, on unpaired inputs.
    "test": {"netG": "unet_256", "norm": "batch", "dataset_mode": "single"},
}

# `python train.py` with no --dataroot trains on the generated demo set (datasets/make_demo.py):
# 128 px pairs, a U-Net sized for them, and a schedule sized to end in about 4 minutes on 2 cores.
DEMO_DEFAULTS: dict[str, Any] = {
    "name": "demo", "netG": "unet_128", "ngf": 32, "ndf": 32, "load_size": 128, "crop_size": 128,
    "preprocess": "none", "n_epochs": 6, "n_epochs_decay": 6, "batch_size": 4, "num_threads": 1,
    "cache_dataset": True,
    "display_id": 0, "print_freq": 100, "save_latest_freq": 2000, "save_epoch_freq": 5,
    "display_freq": 400, "update_html_freq": 400,
}
