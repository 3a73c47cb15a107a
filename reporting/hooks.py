"""Look inside a network: activation statistics, feature maps and gradients of named layers.

``LayerInspector`` is a context manager: entering registers a forward hook (and, unless told
otherwise, a full backward hook) on each layer, leaving removes every one of them, even when
the body raised. Statistics pool over every call made while inside, so running a whole test
set through the network describes the layers over that set; the feature maps kept for images
are those of the first sample of the first call.

Full backward hooks wrap a layer's outputs; code that then modifies such an output in place
(an ``inplace=True`` activation right after it) makes autograd raise. Pass
``capture_grads=False`` for forward-only inspection, or inspect a layer whose output is not
modified in place.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from reporting.images import save_image, tile_row
from util.errors import OptionError

_MIN_TILE_PX = 32  # feature maps smaller than this are enlarged (nearest) so they stay visible


def resolve_layers(stages: dict[str, nn.Module], net: nn.Module, names: list[str]) -> dict[str, nn.Module]:
    """Map each name to a module: a stage name of ``net.named_stages()`` or a dotted module path."""
    layers: dict[str, nn.Module] = {}
    for raw in names:
        name = raw.strip()
        if not name:
            continue
        if name in stages:
            layers[name] = stages[name]
            continue
        try:
            layers[name] = net.get_submodule(name)
        except AttributeError:
            raise OptionError(f"--inspect_layers: unknown layer '{name}'; valid stage names: "
                              f"{', '.join(stages) or '(none)'}, or a dotted module path of the network") from None
    return layers


def _first_tensor(value: Any) -> Tensor | None:
    if isinstance(value, Tensor):
        return value
    if isinstance(value, (tuple, list)):
        return next((v for v in value if isinstance(v, Tensor)), None)
    return None


@dataclass
class _Record:
    """Running float64 totals of everything one layer produced (and received as gradient)."""
    shape: tuple[int, ...] = ()
    calls: int = 0
    count: int = 0
    total: float = 0.0
    sq_total: float = 0.0
    minimum: float = math.inf
    maximum: float = -math.inf
    zeros: int = 0
    grad_sq_total: float | None = None
    first_map: Tensor | None = field(default=None, repr=False)  # (C, H, W) of the first sample

    def add_activation(self, out: Tensor) -> None:
        values = out.detach()
        as64 = values.double()
        self.shape = tuple(values.shape)
        self.calls += 1
        self.count += values.numel()
        self.total += as64.sum().item()
        self.sq_total += (as64 * as64).sum().item()
        if values.numel():
            self.minimum = min(self.minimum, values.min().item())
            self.maximum = max(self.maximum, values.max().item())
        self.zeros += int((values == 0).sum().item())
        if self.first_map is None and values.dim() == 4 and values.shape[0] > 0:
            self.first_map = values[0].float().cpu().clone()

    def add_gradient(self, grad: Tensor) -> None:
        sq = grad.detach().double().pow(2).sum().item()
        self.grad_sq_total = sq if self.grad_sq_total is None else self.grad_sq_total + sq

    def summary(self) -> dict[str, Any]:
        n = max(self.count, 1)
        mean = self.total / n
        var = max(self.sq_total / n - mean * mean, 0.0)
        stats: dict[str, Any] = {"shape": list(self.shape), "calls": self.calls, "mean": mean,
                                 "std": math.sqrt(var), "min": self.minimum, "max": self.maximum,
                                 "zero_fraction": self.zeros / n}
        if self.grad_sq_total is not None:
            stats["grad_norm"] = math.sqrt(self.grad_sq_total)
        return stats


class LayerInspector:
    """Capture activations (and gradients) of the given named layers while the context is open."""

    def __init__(self, layers: dict[str, nn.Module], capture_grads: bool = True) -> None:
        self.layers = dict(layers)
        self.capture_grads = capture_grads
        self._records: dict[str, _Record] = {name: _Record() for name in self.layers}
        self._handles: list[RemovableHandle] = []

    def __enter__(self) -> "LayerInspector":
        if self._handles:
            raise RuntimeError("LayerInspector is already active")
        for name, module in self.layers.items():
            record = self._records[name]
            self._handles.append(module.register_forward_hook(self._forward_hook(record)))
            if self.capture_grads:
                self._handles.append(module.register_full_backward_hook(self._backward_hook(record)))
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.remove()

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    @staticmethod
    def _forward_hook(record: _Record):
        def hook(module: nn.Module, inputs: Any, output: Any) -> None:
            out = _first_tensor(output)
            if out is not None:
                record.add_activation(out)
        return hook

    @staticmethod
    def _backward_hook(record: _Record):
        def hook(module: nn.Module, grad_input: Any, grad_output: Any) -> None:
            grad = _first_tensor(grad_output)  # d loss / d (this layer's output)
            if grad is not None:
                record.add_gradient(grad)
        return hook

    def stats(self) -> dict[str, dict[str, Any]]:
        """Per captured layer: shape (of the last call), calls, mean, std, min, max,
        zero_fraction, and grad_norm (L2 norm of the output gradients) once a backward ran."""
        return {name: record.summary() for name, record in self._records.items() if record.calls}

    def save_feature_maps(self, out_dir: Path, max_channels: int = 8) -> dict[str, Path]:
        """Write one PNG per captured layer: its first ``max_channels`` channels side by side,
        each stretched to its own min..max so that faint channels stay visible."""
        if max_channels < 1:
            raise ValueError(f"max_channels must be at least 1, got {max_channels}")
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        written: dict[str, Path] = {}
        for name, record in self._records.items():
            if record.first_map is None:
                continue
            tiles = _normalize_channels(record.first_map[:max_channels])
            path = out_dir / f"{_file_stem(name)}.png"
            # save_image takes [-1, 1]; the tiles are in [0, 1] and the frame white.
            save_image(tile_row(tiles, padding=1, pad_value=1.0) * 2 - 1, path)
            written[name] = path
        return written


def _normalize_channels(maps: Tensor) -> Tensor:
    """(C, H, W) -> (C, 1, H', W') in [0, 1], per channel; a constant channel becomes mid-grey."""
    flat = maps.flatten(1)
    low = flat.min(dim=1).values.view(-1, 1, 1)
    span = (flat.max(dim=1).values.view(-1, 1, 1) - low)
    tiles = torch.where(span > 0, (maps - low) / span.clamp_min(1e-12), torch.full_like(maps, 0.5))
    tiles = tiles.unsqueeze(1)
    factor = math.ceil(_MIN_TILE_PX / min(maps.shape[-2:]))
    if factor > 1:
        tiles = F.interpolate(tiles, scale_factor=factor, mode="nearest")
    return tiles


def _file_stem(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name) or "layer"
