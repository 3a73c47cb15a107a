"""Run a loaded generator on single images of any size and mode (what translate.py drives).

An image goes: decoded to the channels the model takes -> fitted to a size the generator
accepts (``--load_size``, else one of ``FIT_MODES``) -> encoded to the network's input ->
generator -> output brought back to the image's own size -> decoded to an image.
:meth:`Translator.run` takes and gives tensors, so 16-bit and many-channel files keep their
samples (translate.py); calling the translator takes and gives 8-bit PIL images (serve.py).

How images become network inputs and outputs becomes images is a codec chosen by the model
(``translate_io`` in the model registry): ``rgb`` feeds the image itself in [-1, 1];
``lab`` (colorization) feeds L and rebuilds colour from the full-resolution L of the input
and the predicted ab, so only the chroma is ever resampled.
"""
from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from data.image_io import DataError, pil_to_uint8
from data.image_ops import resize_bicubic, to_unit
from data.padding import crop_padding, pad_to_multiple
from data.transforms import PREPROCESS_MODES, to_signed_unit, valid_size
from models.batchnorm import BatchNorm2d, set_bn_eval_mode
from data.color import lab_tensors_to_rgb, normalize_l, rgb_to_lab
from reporting.images import to_uint8
from util.errors import OptionError
from util.registry import Registry

Size = tuple[int, int]   # (height, width)
# What runs the network: a torch module, or an exported graph (inference/onnx_model.py).
Generator = Callable[[torch.Tensor], torch.Tensor]


# -- sizes ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class FitPlan:
    """Resize to ``resize_to`` (None: keep), then pad ``pad`` rows at the bottom and columns
    at the right; the output is cropped and resized back the opposite way."""
    resize_to: Size | None
    pad: Size = (0, 0)
    reflect: bool = False     # reflect-pad to the multiple, centred (data/padding.py)


FitMode = Callable[[int, int, int], FitPlan]   # (height, width, size multiple) -> plan

FIT_MODES: Registry[FitMode] = Registry("--fit")
FIT_MODES.add("resize", lambda h, w, m: FitPlan((valid_size(h, m), valid_size(w, m))),
              help="resize each side to the nearest size the generator accepts, and the output back")
FIT_MODES.add("pad", lambda h, w, m: FitPlan(None, (math.ceil(h / m) * m - h, math.ceil(w / m) * m - w)),
              help="pad the bottom and right edges (edge pixels repeated) up to the next accepted size, "
                   "and crop the output; no resampling, but a U-Net may pad a lot")
FIT_MODES.add("reflect", lambda h, w, m: FitPlan(None, reflect=True),
              help="reflect-pad both sides of each axis up to the next accepted size and crop the output: "
                   "no resampling, and what --preprocess pad trains with")


DEFAULT_FIT = "resize"
# The fit that feeds a generator as its training did, by what --preprocess did to the images.
FIT_AFTER_PADDING = "reflect"
FIT_HELP = (f"(default: {FIT_AFTER_PADDING} for a checkpoint trained with --preprocess pad, or an ONNX file "
            f"exported from one; else {DEFAULT_FIT})")


def fit_after(preprocess: str | None) -> str:
    """The --fit for a generator trained with ``preprocess``: reflect-padded at their own size
    (--preprocess pad), its images are fitted the same way; any other training resizes."""
    pads = preprocess in PREPROCESS_MODES and PREPROCESS_MODES.get(preprocess).pads
    return FIT_AFTER_PADDING if pads else DEFAULT_FIT


def plan_for(height: int, width: int, multiple: int, fit: str, load_size: int | None) -> FitPlan:
    if load_size is not None:
        # The reference's test-time preprocessing: a load_size x load_size square.
        if load_size % multiple:
            raise OptionError(f"--load_size {load_size} is not a multiple of {multiple}, which the generator "
                              f"needs; use --load_size {valid_size(load_size, multiple)}")
        return FitPlan((load_size, load_size))
    return FIT_MODES.get(fit)(height, width, multiple)


# -- codecs ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Codec:
    decode_mode: Callable[[int], str]                               # input_nc -> PIL mode to decode to
    encode: Callable[[torch.Tensor], torch.Tensor]                  # samples (C,H,W) -> network input (C,H,W)
    # (output at full size, the source's samples: uint8 or 16-bit) -> the result in [-1, 1], (C,H,W):
    # what translate.py writes at 8 or 16 bits and serve.py shows at 8.
    rebuild: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    output_channels: tuple[int, ...]                                # output_nc values it can show
    any_channels: bool = False   # Translator.run takes and gives any channels and 16-bit samples
    input_channels: tuple[int, ...] = (1, 3)                        # input_nc values it can feed

    def read_channels(self, input_nc: int) -> int:
        """How many channels a file is decoded to for a generator of ``input_nc``."""
        return input_nc if self.any_channels else len(self.decode_mode(input_nc))


def _rgb_mode(input_nc: int) -> str:
    if input_nc not in (1, 3):
        raise OptionError(f"--input_nc {input_nc}: images give 1 (gray) or 3 (RGB) channels")
    return "L" if input_nc == 1 else "RGB"


def _lab_encode(rgb: torch.Tensor) -> torch.Tensor:
    return normalize_l(rgb_to_lab(to_unit(rgb))[:1])


def _lab_rebuild(ab: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    # L from the source at its own depth (16-bit samples keep their lightness), ab predicted.
    return lab_tensors_to_rgb(_lab_encode(source), ab.float())


CODECS: Registry[Codec] = Registry("translate_io")
CODECS.add("rgb", Codec(_rgb_mode, to_signed_unit, lambda out, src: out, (1, 3), any_channels=True),
           help="the image itself in [-1, 1], gray or RGB (or any channels, 8 or 16 bits, in files), in and out")
CODECS.add("lab", Codec(lambda nc: "RGB", _lab_encode, _lab_rebuild, (2,), input_channels=(1,)),
           help="colorization: L in, ab out, RGB rebuilt with the input's own L")


def check_codec_channels(translate_io: str, input_nc: int, output_nc: int, where: str, what: str,
                         hint: str = "") -> None:
    """Refuse a generator whose channels the codec cannot feed or show, before any work: the one
    check behind translate.py, serve.py, export.py (a typed --model that contradicts the
    checkpoint) and translate.py --onnx (a file whose metadata contradicts its graph)."""
    codec = CODECS.get(translate_io)
    if codec.any_channels or (input_nc in codec.input_channels and output_nc in codec.output_channels):
        return
    need = f"{' or '.join(map(str, codec.input_channels))} -> {' or '.join(map(str, codec.output_channels))}"
    raise OptionError(f"{where}: {what} needs a generator with {need} channels, this one has {input_nc} -> "
                      f"{output_nc}{hint}")


# -- test-time behaviour --------------------------------------------------------------------
def check_bn_eval_used(opt: argparse.Namespace) -> None:
    """Refuse a typed --bn_eval without --eval: it would be ignored (without --eval batch norm
    always uses each batch's own statistics), and the results would silently not be what was
    asked for."""
    if "bn_eval" in getattr(opt, "explicit", ()) and not opt.eval:
        raise OptionError(f"--bn_eval {opt.bn_eval} only applies with --eval (without it, batch norm uses each "
                          "image's own statistics and dropout is on, as in the paper); add --eval")


_TORCH_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)
BATCH_NORM = "batch norm"
# Per-image statistics and nothing running: the same output in train and eval mode.
_MODE_FREE = ("instance norm", "layer norm", "group norm")


def _norm_kind(module: nn.Module) -> str | None:
    if isinstance(module, (BatchNorm2d, *_TORCH_BATCH_NORMS)):
        return BATCH_NORM
    if isinstance(module, nn.InstanceNorm2d):
        return "instance norm" if not module.track_running_stats else "instance norm with running statistics"
    if isinstance(module, nn.GroupNorm):
        return "layer norm" if module.num_groups == 1 else "group norm"
    return None


def _norm_kinds(net: nn.Module) -> list[str]:
    """The kinds of norm layer ``net`` has, in the order met."""
    kinds: list[str] = []
    for module in net.modules():
        kind = _norm_kind(module)
        if kind and kind not in kinds:
            kinds.append(kind)
    return kinds


def describe_behaviour(net: nn.Module, eval_mode: bool, bn_eval: str, dropout_on: bool) -> str:
    """What the network does at test time, by what it has: batch norm's statistics only when it
    has batch norm, per-image norms as the same in both modes, dropout only when it has
    Dropout layers. Shown in logs, metrics.json and compare.py's table, so it must be true."""
    parts = []
    for kind in _norm_kinds(net):
        if kind == BATCH_NORM:
            parts.append(f"{kind}: eval, bn_eval={bn_eval}" if eval_mode else f"{kind}: batch statistics")
        elif kind in _MODE_FREE:
            parts.append(f"{kind}: per-image statistics (the same in train and eval mode)")
        else:
            parts.append(f"{kind}: {'eval' if eval_mode else 'train'} mode")
    parts = parts or ["no norm layers"]
    has_dropout = any(isinstance(m, nn.Dropout) for m in net.modules())
    parts.append(("dropout on" if dropout_on else "dropout off") if has_dropout else "no dropout layers")
    return "; ".join(parts)


def set_inference_behaviour(net: nn.Module, eval_mode: bool, bn_eval: str, dropout: str | None) -> str:
    """As test.py: by default the paper's mode (batch statistics, dropout on); ``eval_mode``
    switches norm layers to eval (batch norm per ``bn_eval``) and dropout off. Returns
    :func:`describe_behaviour`'s label."""
    net.train(not eval_mode)
    if eval_mode:
        set_bn_eval_mode(net, bn_eval)
    dropout_on = (dropout or ("off" if eval_mode else "on")) == "on"
    for module in net.modules():
        if isinstance(module, nn.Dropout):
            module.train(dropout_on)
    return describe_behaviour(net, eval_mode, bn_eval, dropout_on)


# -- the whole path -------------------------------------------------------------------------
class Translator:
    def __init__(self, net: Generator, device: torch.device, codec: Codec, input_nc: int, output_nc: int,
                 size_multiple: int, fit: str = "resize", load_size: int | None = None, min_side: int = 1) -> None:
        """``min_side``: the smallest side the generator takes (inference/generator.py's
        :func:`~inference.generator.smallest_side`, an ONNX file's metadata)."""
        self.net, self.device, self.codec = net, device, codec
        self.input_nc, self.output_nc = input_nc, output_nc
        if not codec.any_channels:
            self.image_mode()
        self.size_multiple, self.fit, self.load_size = size_multiple, fit, load_size
        self.min_side = min_side

    @property
    def read_channels(self) -> int:
        """How many channels each file is decoded to (data/pixels.read_pixels)."""
        return self.codec.read_channels(self.input_nc)

    def fitting(self) -> str:
        """How sizes are fitted, as the user would type it (--load_size wins over --fit)."""
        return f"--load_size {self.load_size}" if self.load_size is not None else f"--fit {self.fit}"

    def fed_size(self, height: int, width: int) -> Size:
        """The (height, width) the generator gets for an image of this size."""
        plan = plan_for(height, width, self.size_multiple, self.fit, self.load_size)
        h, w = plan.resize_to or (height, width)
        if plan.reflect:
            m = self.size_multiple
            return math.ceil(h / m) * m, math.ceil(w / m) * m
        return h + plan.pad[0], w + plan.pad[1]

    def check_size(self, height: int, width: int, name: str) -> None:
        """Refuse, in one line naming the image, one the generator cannot take once fitted
        (a ResNet's bottleneck would be 1 px: a batch norm or reflection padding fails deep inside)."""
        fed_h, fed_w = self.fed_size(height, width)
        if min(fed_h, fed_w) >= self.min_side:
            return
        fed = f" (fitted to {fed_w}x{fed_h} px by {self.fitting()})" if (fed_h, fed_w) != (height, width) else ""
        remedy = (f"--load_size {valid_size(self.min_side, self.size_multiple)} or more" if self.load_size is not None
                  else f"an image of at least {self.min_side}x{self.min_side} px")
        raise DataError(f"{name}: {width}x{height} px{fed} is too small for this generator, which takes sides "
                        f"of at least {self.min_side} px; use {remedy}")

    def image_mode(self) -> str:
        """The PIL mode inputs decode to; raises when outputs cannot be shown as an 8-bit image."""
        if self.output_nc not in self.codec.output_channels:
            hint = "; a colorization checkpoint needs --model colorization" if self.output_nc == 2 else ""
            raise OptionError(f"--output_nc {self.output_nc}: this model's outputs cannot be shown as an image "
                              f"(expected {' or '.join(map(str, self.codec.output_channels))} channels){hint}")
        return self.codec.decode_mode(self.input_nc)

    @torch.no_grad()
    def run(self, source: torch.Tensor, name: str = "<image>") -> torch.Tensor:
        """(C, H, W) samples (uint8, or 16-bit in int32) -> the output (C_out, H, W) in [-1, 1]."""
        height, width = source.shape[-2:]
        self.check_size(height, width, name)
        plan = plan_for(height, width, self.size_multiple, self.fit, self.load_size)
        fitted = source if plan.resize_to is None else resize_bicubic(source, plan.resize_to)
        x = self.codec.encode(fitted).unsqueeze(0)
        if plan.reflect:
            x = pad_to_multiple(x, self.size_multiple)
        elif plan.pad != (0, 0):
            x = F.pad(x, (0, plan.pad[1], 0, plan.pad[0]), mode="replicate")
        y = self.net(x.to(self.device)).float().cpu()[0]
        if plan.reflect:
            y = crop_padding(y, height, width, self.size_multiple)
        y = y[:, :y.shape[1] - plan.pad[0], :y.shape[2] - plan.pad[1]]
        return resize_bicubic(y, (height, width)).clamp(-1, 1)

    def __call__(self, image: Image.Image, name: str = "<image>") -> Image.Image:
        source = pil_to_uint8(image, self.image_mode(), name)          # (C, H, W) uint8
        return Image.fromarray(to_uint8(self.result(source, name)))

    def result(self, source: torch.Tensor, name: str = "<image>") -> torch.Tensor:
        """(C, H, W) samples -> the result image (C_out, H, W) in [-1, 1] at full precision (a
        colorization's colour rebuilt from the source's own lightness)."""
        return self.codec.rebuild(self.run(source, name), source)
