"""A buffer of past generated pairs (Shrivastava et al.): D sometimes sees older fakes.

pix2pix does not use it (``--pool_size 0``); it is here for users who turn it on.
"""
from __future__ import annotations

import torch


class ImagePool:
    def __init__(self, size: int, generator: torch.Generator | None = None) -> None:
        self.size = size
        self.images: list[torch.Tensor] = []
        # A private generator keeps the pool's choices out of the global RNG stream.
        self.generator = generator or torch.Generator().manual_seed(0)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """Return a batch of the same size: each slot is the new image, or (half the time, once
        the pool is full) a stored one that the new image replaces."""
        if self.size == 0:
            return images
        out = []
        for image in images.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif torch.rand((), generator=self.generator).item() < 0.5:
                idx = int(torch.randint(self.size, (), generator=self.generator))
                out.append(self.images[idx].clone())
                self.images[idx] = image.clone()
            else:
                out.append(image)
        return torch.cat(out, 0)

    def state_dict(self) -> dict:
        return {"images": [im.cpu() for im in self.images], "rng": self.generator.get_state()}

    def load_state_dict(self, state: dict, device: torch.device) -> None:
        self.images = [im.to(device) for im in state["images"]]
        self.generator.set_state(state["rng"])
