"""Weight initialization by name (``--init_type``, scaled by ``--init_gain``).

Conv and linear weights follow the chosen scheme; the scale of every norm layer is drawn from
N(1, gain) and all biases start at 0, as in the pix2pix paper's setup.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from util.registry import Registry

WeightInit = Callable[[torch.Tensor, float], None]

INITS: Registry[WeightInit] = Registry("--init_type")
INITS.add("normal", lambda w, gain: nn.init.normal_(w, 0.0, gain), help="N(0, gain) (paper default, gain 0.02)")
INITS.add("xavier", lambda w, gain: nn.init.xavier_normal_(w, gain=gain), help="Xavier/Glorot normal, scaled by gain")
INITS.add("kaiming", lambda w, gain: nn.init.kaiming_normal_(w, a=0, mode="fan_in"),
          help="Kaiming/He normal (fan_in); gain unused")
INITS.add("orthogonal", lambda w, gain: nn.init.orthogonal_(w, gain=gain), help="orthogonal, scaled by gain")

_WEIGHTED = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)


@torch.no_grad()
def init_weights(net: nn.Module, init_type: str = "normal", gain: float = 0.02) -> nn.Module:
    init = INITS.get(init_type)
    for module in net.modules():
        weight = getattr(module, "weight", None)
        if not isinstance(weight, nn.Parameter):
            continue
        if isinstance(module, _WEIGHTED):
            init(weight, gain)
        elif weight.dim() == 1:
            # Per-channel scale of a norm layer (batch, group, layer, ours).
            nn.init.normal_(weight, 1.0, gain)
        bias = getattr(module, "bias", None)
        if isinstance(bias, nn.Parameter):
            nn.init.zeros_(bias)
    return net
