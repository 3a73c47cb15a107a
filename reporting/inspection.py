"""test.py's --inspect_layers: activation/gradient statistics and feature maps of G's stages."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
from torch import nn

from reporting.hooks import LayerInspector, resolve_layers
from reporting.html import ImageCell, Section


def inspect_generator(net: nn.Module, names: list[str], run_first: Callable[[], torch.Tensor | None],
                      out_dir: Path, page_dir: Path) -> Section:
    """Run ``run_first`` (one forward, returning a loss to backpropagate or None) with hooks on
    the named stages, write feature-map images, and return a page section; no hook stays."""
    layers = resolve_layers(net.named_stages(), net, names)
    with LayerInspector(layers) as inspector:
        with torch.enable_grad():
            loss = run_first()
            if loss is not None:
                loss.backward()
        maps = inspector.save_feature_maps(out_dir)
        stats = inspector.stats()
    net.zero_grad(set_to_none=True)
    table = [{"layer": name, **{k: v for k, v in s.items()}} for name, s in stats.items()]
    cells = [[ImageCell(str(path.relative_to(page_dir)), name)] for name, path in maps.items()]
    return Section(title="layer inspection",
                   text="activations of the first test image (first channels, each stretched to its own range); "
                        "grad_norm is the L2 norm of d(L1 to real_B)/d(stage output)",
                   image_rows=cells, table=table, image_width=768)
