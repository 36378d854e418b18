"""Content hashes that key caches and identify data in records: equal hashes mean equal bytes."""

from __future__ import annotations

import hashlib

from torch import Tensor


def content_hash(arrays: dict[str, Tensor]) -> str:
    """sha256 over the name, dtype, shape and bytes of each array, in name order (full hex; records keep a prefix)."""
    digest = hashlib.sha256()
    for key in sorted(arrays):
        value = arrays[key].detach().cpu().contiguous()
        digest.update(f"{key}:{value.dtype}:{tuple(value.shape)};".encode())
        digest.update(value.numpy().tobytes())
    return digest.hexdigest()
