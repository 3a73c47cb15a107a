"""Models by name (``--model``)."""
from __future__ import annotations

import argparse
from typing import Callable

from models.base_model import BaseModel
from models.colorization_model import ColorizationModel
from models.pix2pix_model import Pix2PixModel
from models.test_model import TestModel
from engine.distributed import Runtime
from util.registry import Registry

ModelFactory = Callable[[argparse.Namespace, Runtime], BaseModel]

MODELS: Registry[ModelFactory] = Registry("--model")
MODELS.add("pix2pix", Pix2PixModel, help="conditional GAN + L1 on aligned pairs")
MODELS.add("colorization", ColorizationModel, translate_io="lab",
           help="pix2pix from lightness L to colour ab (Lab); pages show RGB")
MODELS.add("test", TestModel, help="the generator alone, for inference on single images")


def create_model(opt: argparse.Namespace, runtime: Runtime) -> BaseModel:
    return MODELS.get(opt.model)(opt, runtime)
