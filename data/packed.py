"""Decoded samples kept in memory (``--cache_dataset``) as a few flat buffers.

Flat buffers rather than a tensor per image: a forked loader worker shares them without
copying, and a spawned one receives a few shared-memory blocks instead of one per image. One
buffer per sample type (8-bit uint8, 16-bit int32, float32), so a set mixing depths still packs.
"""
from __future__ import annotations

import torch


class PackedSamples:
    def __init__(self, decoded: list[tuple[torch.Tensor, ...]]) -> None:
        self._layout: list[list[tuple[torch.dtype, int, torch.Size]]] = []
        offsets: dict[torch.dtype, int] = {}
        for sample in decoded:
            parts = []
            for tensor in sample:
                offset = offsets.get(tensor.dtype, 0)
                parts.append((tensor.dtype, offset, tensor.shape))
                offsets[tensor.dtype] = offset + tensor.numel()
            self._layout.append(parts)
        self.buffers = {dtype: torch.cat([t.reshape(-1) for sample in decoded for t in sample if t.dtype == dtype])
                        for dtype in offsets}

    def __len__(self) -> int:
        return len(self._layout)

    @property
    def mebibytes(self) -> float:
        return sum(b.numel() * b.element_size() for b in self.buffers.values()) / 2**20

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        """Views into the buffers: the tensors of sample ``index``."""
        return tuple(self.buffers[dtype][offset:offset + shape.numel()].view(shape)
                     for dtype, offset, shape in self._layout[index])
