"""The content digest of a checkpoint: what the bytes of a file held when it was written.

torch.save's zip archive records CRCs that torch.load does not check, so a bit flipped inside a
tensor's bytes (a disk, a copy, a transfer padded after a truncation) loads as finite numbers
and training or inference would go on with them. Every file this program writes carries
``digest``: sha256 over a canonical listing of everything else in it, checked by the one read
(files.py ``load_file``) before anything uses the weights.

The listing: one line per entry, in a fixed order (mapping keys sorted by their repr, sequences
by position), each naming the entry's path and type; a tensor by its dtype, its shape and the
sha256 of its bytes (on the CPU, contiguous: the same wherever it was loaded to); a plain value
by its repr (exact for floats). Tensors are hashed on up to 8 threads (hashlib releases the
GIL): the 686 MB of a 256 px full checkpoint took about 0.8 s on a busy 2-core Xeon (README).

Nothing here knows what a file holds (format.py does): it digests any payload of tensors and
plain values, the ones ``torch.load(weights_only=True)`` reads back.
"""
from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterator, Mapping

import torch

DIGEST_KEY = "digest"
ALGORITHM = "sha256"   # with the CPU's SHA instructions about twice blake2b's speed (measured)
_PLAIN = (str, bytes, int, float, complex, bool, type(None), torch.dtype, torch.device)
_MAX_THREADS = 8


class DigestTypeError(TypeError):
    """A payload entry that has no canonical form: a bug in the writer, found at its first save."""


# Tensor digests already computed, by the id of a tensor the caller keeps alive meanwhile: the
# two files of one save share G's weights, which are then hashed once.
TensorDigests = dict[int, list]


def content_digest(payload: Mapping[str, Any], known: TensorDigests | None = None) -> str:
    """``sha256:<hex>`` of ``payload`` less its own ``digest`` entry."""
    known = {} if known is None else known
    entries = list(_entries({k: v for k, v in payload.items() if k != DIGEST_KEY}, ()))
    new = list({id(value): value for _, kind, value in entries if kind == "tensor" and id(value) not in known}.values())
    with ThreadPoolExecutor(max_workers=max(1, min(_MAX_THREADS, os.cpu_count() or 1))) as pool:
        known.update(zip(map(id, new), pool.map(_tensor_digest, new)))
    top = hashlib.new(ALGORITHM)
    for path, kind, value in entries:
        described = known[id(value)] if kind == "tensor" else value
        top.update(json.dumps([path, kind, described]).encode() + b"\n")
    return f"{ALGORITHM}:{top.hexdigest()}"


def _entries(value: Any, path: tuple[str, ...]) -> Iterator[tuple[list[str], str, Any]]:
    if torch.is_tensor(value):
        yield list(path), "tensor", value
    elif isinstance(value, Mapping):
        yield list(path), "dict", len(value)
        for key in sorted(value, key=repr):
            yield from _entries(value[key], (*path, repr(key)))
    elif isinstance(value, (list, tuple)):
        yield list(path), "list" if isinstance(value, list) else "tuple", len(value)
        for i, item in enumerate(value):
            yield from _entries(item, (*path, str(i)))
    elif isinstance(value, _PLAIN):
        yield list(path), type(value).__name__, repr(value)
    else:
        raise DigestTypeError(f"checkpoint entry {'/'.join(path)}: {type(value).__name__} has no canonical "
                              "form for the content digest")


def _tensor_digest(tensor: torch.Tensor) -> list:
    flat = tensor.detach().to("cpu").contiguous().reshape(-1)
    data = flat.view(torch.uint8) if flat.numel() else flat.new_empty(0, dtype=torch.uint8)
    h = hashlib.new(ALGORITHM)
    h.update(memoryview(data.numpy()))
    return [str(tensor.dtype), list(tensor.shape), h.hexdigest()]
