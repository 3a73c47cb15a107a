"""The runtime: device, rank and world size, built once by the driver and passed down."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def single_process_runtime(gpu_ids: list[int]) -> Runtime:
    device = torch.device(f"cuda:{gpu_ids[0]}") if gpu_ids else torch.device("cpu")
    return Runtime(device=device)


def unwrap(module: nn.Module) -> nn.Module:
    """The plain module inside a DDP (or compile) wrapper; saving and rank-0 work use this."""
    while True:
        inner = getattr(module, "module", None) or getattr(module, "_orig_mod", None)
        if not isinstance(inner, nn.Module):
            return module
        module = inner
