"""The generator alone, for inference on unpaired inputs (``--model test``)."""
from __future__ import annotations

import argparse

import torch

from models.base_model import BaseModel
from engine.distributed import Runtime


class TestModel(BaseModel):
    def __init__(self, opt: argparse.Namespace, runtime: Runtime) -> None:
        super().__init__(opt, runtime)
        self.nets["G"] = self.make_generator()

    @torch.no_grad()
    def test(self) -> None:
        self.real_A = self.inputs["A"]
        with self.autocast():
            self.fake_B = self.net_G(self.real_A).float()

    def current_visuals(self) -> dict[str, torch.Tensor]:
        return {"real_A": self.real_A, "fake_B": self.fake_B}
