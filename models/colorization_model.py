"""Colorization: pix2pix from lightness to colour (``--model colorization``).

G maps L (1 channel, L/50 - 1) to ab (2 channels, ab/110) and D judges (L, ab) pairs; the
training is pix2pix's unchanged. Only what is shown differs: L and ab are not images anyone can
look at, so the visuals are RGB, rebuilt from the input L and the real or generated ab. Pages
and test.py's PSNR/SSIM (fake_B against real_B) are therefore about the colour photos, and
since both share the input L, they measure the colours alone.
"""
from __future__ import annotations

import argparse

import torch

from models.pix2pix_model import Pix2PixModel
from data.color import lab_tensors_to_rgb
from data.colorization import INPUT_NC, OUTPUT_NC
from engine.distributed import Runtime
from util.errors import OptionError


class ColorizationModel(Pix2PixModel):
    def __init__(self, opt: argparse.Namespace, runtime: Runtime) -> None:
        if (opt.input_nc, opt.output_nc) != (INPUT_NC, OUTPUT_NC):
            raise OptionError(f"--model colorization maps L to ab: it needs --input_nc {INPUT_NC} "
                              f"--output_nc {OUTPUT_NC}, got {opt.input_nc} and {opt.output_nc}")
        super().__init__(opt, runtime)

    def current_visuals(self) -> dict[str, torch.Tensor]:
        """real_A as gray (1 channel), fake_B and real_B as RGB, all (N, C, H, W) in [-1, 1]."""
        l_norm = self.real_A.detach().float()
        # The gray that has the input's lightness: Lab with zero chroma, back to sRGB.
        visuals = {"real_A": lab_tensors_to_rgb(l_norm, torch.zeros_like(l_norm).expand(-1, 2, -1, -1))[:, :1],
                   "fake_B": lab_tensors_to_rgb(l_norm, self.fake_B.detach().float())}
        if "B" in self.inputs:
            visuals["real_B"] = lab_tensors_to_rgb(l_norm, self.inputs["B"].float())
        return visuals
