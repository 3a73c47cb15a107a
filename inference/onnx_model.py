"""The generator as an ONNX file (export.py) and back through onnxruntime (translate.py --onnx).

The file carries, as metadata, everything needed to use it without this project's options:
channels, the size multiple the network needs, the codec (how pixels become inputs and
outputs become pixels), the output range and the frozen norm behaviour. ``translate.py
--onnx`` builds its Translator from that metadata alone, so no torch network is built.

onnx, onnxscript and onnxruntime come from requirements/export.txt; they are imported only
when an ONNX file is written or read.
"""
from __future__ import annotations

import importlib
import logging
import os
import re
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from inference.translator import CODECS, DEFAULT_FIT, FIT_MODES, Translator, check_codec_channels
from util.errors import UserError, first_line
from util.file_modes import umask_mode

FORMAT = "pix2pix-generator-onnx/1"
INPUT_NAME, OUTPUT_NAME = "image", "output"
# What a reader needs to feed the graph and read its output, per codec (written into the file).
PROCESSING = {
    "rgb": ("RGB (or gray when input_nc is 1) pixels p in 0..255 as float32 p/127.5 - 1, NCHW",
            "output in [-1, 1] (clamp it); pixel = round((y + 1) * 127.5)"),
    "lab": ("CIE Lab L of the sRGB image (D65) as float32 L/50 - 1, N x 1 x H x W",
            "output is ab/110 in [-1, 1]; colour = Lab(input L, 110 * output) -> sRGB"),
}
# Any other size: what translate.py --onnx does with the file's --fit, in words (the reflect
# padding is data/padding.py's).
FIT_TEXT = {
    "resize": "resize other sizes (bicubic) to the nearest multiples and the output back to the input's size",
    "pad": "pad other sizes at the bottom and right (edge pixels repeated) up to the next multiples and crop "
           "the output back",
    "reflect": "pad other sizes by reflection (mirrored about the edge pixels, repeated when wider than the "
               "image) up to the next multiples, splitting each axis' padding between its two sides (the odd "
               "pixel after), and crop the output back",
}


class OnnxError(UserError, ValueError):
    """An ONNX file that cannot be written or used; the message is one line naming the file."""


def _require(module: str) -> object:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise OnnxError(f"{module} is not installed; install requirements/export.txt "
                        "(pip install -c constraints.txt -r requirements/export.txt)") from None


@dataclass(frozen=True)
class OnnxSpec:
    input_nc: int
    output_nc: int
    size_multiple: int
    translate_io: str
    norm_behaviour: str
    netG: str
    fit: str = DEFAULT_FIT   # translate.py's --fit for it: reflect when trained with --preprocess pad
    min_side: int = 1        # the smallest height and width the graph takes (a ResNet's: 8)
    bn_eval: str | None = None   # the --bn_eval it was frozen with (None: not recorded, older files)

    def metadata(self) -> dict[str, str]:
        pre, post = PROCESSING[self.translate_io]
        sides = f"height and width multiples of {self.size_multiple}, at least {self.min_side}"
        meta = {"format": FORMAT, "input_nc": str(self.input_nc), "output_nc": str(self.output_nc),
                "size_multiple": str(self.size_multiple), "min_side": str(self.min_side),
                "translate_io": self.translate_io, "norm_behaviour": self.norm_behaviour, "netG": self.netG,
                "output_range": "[-1, 1]", "fit": self.fit,
                "preprocessing": f"{pre}; {sides}: {FIT_TEXT[self.fit]}",
                "postprocessing": post}
        if self.bn_eval is not None:
            meta["bn_eval"] = self.bn_eval
        return meta

    @classmethod
    def from_metadata(cls, meta: dict[str, str], path: Path) -> "OnnxSpec":
        if meta.get("format") != FORMAT:
            raise OnnxError(f"{path}: not a generator written by export.py (metadata format "
                            f"{meta.get('format')!r}, expected {FORMAT!r})")
        # Files written before the fit was recorded have none: they get the default.
        fit = meta.get("fit", DEFAULT_FIT)
        if fit not in FIT_MODES:
            raise OnnxError(f"{path}: broken pix2pix metadata (fit {fit!r} is none of "
                            f"{', '.join(FIT_MODES.names())})")
        try:
            multiple = int(meta["size_multiple"])
            # Files written before min_side was recorded: the multiple (too small for a ResNet,
            # whose failure onnxruntime then reports, as one line).
            spec = cls(int(meta["input_nc"]), int(meta["output_nc"]), multiple,
                       CODECS.canonical(meta["translate_io"]), meta["norm_behaviour"], meta["netG"], fit,
                       int(meta.get("min_side", multiple)),
                       meta.get("bn_eval") or _bn_eval_in(meta["norm_behaviour"]))
        except (KeyError, ValueError) as err:
            raise OnnxError(f"{path}: broken pix2pix metadata ({err})") from None
        check_codec_channels(spec.translate_io, spec.input_nc, spec.output_nc, str(path),
                             f"its metadata's translate_io {spec.translate_io}",
                             "; the file is inconsistent: export it again from a checkpoint")
        return spec


def _bn_eval_in(norm_behaviour: str) -> str | None:
    """The --bn_eval named in an older file's behaviour label ("batch norm: eval, bn_eval=running; ..."),
    None when it has no batch norm."""
    found = re.search(r"bn_eval=(\w+)", norm_behaviour)
    return found[1] if found else None


def export_onnx(net: nn.Module, spec: OnnxSpec, path: Path) -> None:
    """Write ``net`` (its behaviour already set) with dynamic batch, height and width; the file
    appears only once it is complete, so a failing export leaves an existing file as it was."""
    _require("onnxscript")
    onnx = _require("onnx")
    # The temporary file is made before the export (which takes seconds): a folder that cannot
    # be written fails at once.
    with _temporary_beside(path) as tmp:
        onnx.save_model(_onnx_model(net, spec, path), tmp)
        onnx.checker.check_model(tmp)
        os.replace(tmp, path)


@contextmanager
def _temporary_beside(path: Path) -> Iterator[str]:
    tmp, done = None, False
    created = [p for p in path.absolute().parents if not p.exists()]   # removed again on failure
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        umask_mode(fd)
        os.close(fd)
        yield tmp
        done = True
    except OSError as err:  # a read-only folder, a full disk: one line, the old file as it was
        where = err.filename if err.filename and err.filename != tmp else path
        raise OnnxError(f"{where}: could not be written ({err.strerror or err}); nothing half-written "
                        "is left") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        for folder in created if not done else ():   # deepest first, only while empty
            try:
                folder.rmdir()
            except OSError:
                break


_TORCH_REGISTRATION_LOGGER = "torch.onnx._internal.exporter._registration"


def _no_torchvision(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith("torchvision is not installed")


# torch's exporter registers torchvision's ops where it can and warns four times at every export
# where it cannot; no generator here uses them, and torchvision is not a requirement.
logging.getLogger(_TORCH_REGISTRATION_LOGGER).addFilter(_no_torchvision)


def _onnx_model(net: nn.Module, spec: OnnxSpec, path: Path) -> Any:
    """The exported graph as an ONNX ModelProto, with readable axis names and the metadata."""
    # The graph optimizers log every pass at INFO; keep them for --verbose (DEBUG) runs.
    if not logging.getLogger().isEnabledFor(logging.DEBUG):
        for name in ("onnxscript", "onnx_ir"):
            logging.getLogger(name).setLevel(logging.WARNING)
    dynamic = torch.export.Dim.DYNAMIC
    # At least 64 px: a ResNet's 3-pixel reflection padding needs sides over 3, and the tracer
    # would otherwise specialize the dynamic sides to the example's.
    side = spec.size_multiple * -(-64 // spec.size_multiple)
    example = torch.zeros(1, spec.input_nc, side, side)
    param = next(net.parameters(), None)
    if param is not None:
        example = example.to(param.device)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # torch's own exporter still calls the pytree API it deprecates; the FutureWarning is
            # addressed to torch, not to the user, who can do nothing about it.
            warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated",
                                    category=FutureWarning)
            program = torch.onnx.export(net, (example,), dynamo=True, input_names=[INPUT_NAME],
                                        output_names=[OUTPUT_NAME], verbose=False,
                                        dynamic_shapes={"x": {0: dynamic, 2: dynamic, 3: dynamic}})
    except Exception as err:  # the exporter's own error types; their first line says what failed
        raise OnnxError(f"{path}: the ONNX export failed ({first_line(err)})") from None
    model = program.model_proto
    # Readable axis names instead of the tracer's symbols (s77, 2*((s53//2)), ...).
    for value in (model.graph.input[0], model.graph.output[0]):
        for dim, name in zip(value.type.tensor_type.shape.dim, ("batch", None, "height", "width")):
            if name is not None:
                dim.dim_param = name
    for key, value in spec.metadata().items():
        model.metadata_props.add(key=f"pix2pix.{key}", value=value)
    return model


class OnnxGenerator:
    """An exported generator run by onnxruntime on the CPU, called like the torch network."""

    def __init__(self, path: Path, threads: int | None = None) -> None:
        ort = _require("onnxruntime")
        if not path.is_file():
            raise OnnxError(f"{path}: --onnx file does not exist")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own unexported exception types
            raise OnnxError(f"{path}: onnxruntime cannot load it ({first_line(err)})") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        self.spec = OnnxSpec.from_metadata({k.removeprefix("pix2pix."): v for k, v in meta.items()}, path)
        self.path = path

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        feed = np.ascontiguousarray(x.detach().cpu().float().numpy())
        try:
            return torch.from_numpy(self.session.run([OUTPUT_NAME], {INPUT_NAME: feed})[0])
        except Exception as err:  # onnxruntime raises its own unexported exception types
            height, width = feed.shape[-2:]
            raise OnnxError(f"{self.path}: onnxruntime failed on a {width}x{height} px input "
                            f"({first_line(err)})") from None


def onnx_translator(path: Path, fit: str | None = None, load_size: int | None = None) -> Translator:
    """``fit`` None: the one the file records (reflect for a generator trained with --preprocess pad)."""
    gen = OnnxGenerator(path)
    s = gen.spec
    return Translator(gen, torch.device("cpu"), CODECS.get(s.translate_io), s.input_nc, s.output_nc,
                      s.size_multiple, fit=fit or s.fit, load_size=load_size, min_side=s.min_side)
