"""Decoded samples kept in memory (``--cache_dataset``) as one flat uint8 buffer.

One buffer rather than a tensor per image: a forked loader worker shares it without copying,
and a spawned one receives a single shared-memory block instead of one per image.
"""
from __future__ import annotations

import torch


class PackedSamples:
    def __init__(self, decoded: list[tuple[torch.Tensor, ...]]) -> None:
        self._layout: list[list[tuple[int, torch.Size]]] = []
        offset = 0
        for sample in decoded:
            parts = []
            for tensor in sample:
                parts.append((offset, tensor.shape))
                offset += tensor.numel()
            self._layout.append(parts)
        self.buffer = torch.cat([t.reshape(-1) for sample in decoded for t in sample])

    def __len__(self) -> int:
        return len(self._layout)

    @property
    def mebibytes(self) -> float:
        return self.buffer.numel() / 2**20

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        """Views into the buffer: the tensors of sample ``index``."""
        return tuple(self.buffer[offset:offset + shape.numel()].view(shape)
                     for offset, shape in self._layout[index])
