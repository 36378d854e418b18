"""Arrays made once and kept on disk: generated, rendered or parsed data, stored as `.npz` under the hash of what
made it (a config, a code version, the bytes of a source file).

A cache file holds the key it was made for and a JSON description beside the arrays. Reading checks the key and
the expected array names, loads without pickles, and treats anything unusable (truncated, foreign, another key,
arrays missing, a failed `check`) as absent: the arrays are built again and the file is replaced, with a warning.
Writing goes through a temporary file in the same folder and a rename, so a reader never sees half a file, and a
cache that cannot be written (a read-only folder, a full disk) is a warning, never a failed run.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aebench import results

KEY, META = "__key__", "__meta__"  # reserved names inside a cache file
ZIP_MAGIC = b"PK\x03\x04"


@dataclass
class Cached:
    arrays: dict[str, np.ndarray]
    meta: dict[str, Any] = field(default_factory=dict)
    from_cache: bool = False


def key_of(value: Any) -> str:
    """sha256 of a JSON-serialisable value (a config as a dict with its code version): equal keys mean equal inputs."""
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def file_key(path: Path, *parts: Any) -> str:
    """sha256 of a file's bytes and of `parts` (e.g. how it is parsed): the key of data parsed from that file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return key_of([digest.hexdigest(), *parts])


def cache_path(cache_dir: Path, name: str, key: str) -> Path:
    """Where `name`'s arrays for `key` live: `cache_dir/data/NAME-KEYPREFIX.npz`."""
    return Path(cache_dir) / "data" / f"{name}-{key[:16]}.npz"


def cached(
    path: Path,
    key: str,
    build: Callable[[], tuple[dict[str, np.ndarray], dict[str, Any]]],
    *,
    names: Iterable[str] = (),
    check: Callable[[dict[str, np.ndarray], dict[str, Any]], str | None] | None = None,
    what: str = "data",
) -> Cached:
    """The arrays stored at `path` for `key`, or `build()`'s (arrays, meta), written there for the next call.

    `names`: arrays a usable file must hold; `check(arrays, meta)`: a reason the stored arrays are unusable, or
    None; `what` names the data in warnings."""
    found = read(path, key, names=names, check=check, what=what)
    if found is not None:
        return found
    arrays, meta = build()
    write(path, key, arrays, meta, what=what)
    return Cached(arrays, meta, from_cache=False)


def read(
    path: Path,
    key: str,
    *,
    names: Iterable[str] = (),
    check: Callable[[dict[str, np.ndarray], dict[str, Any]], str | None] | None = None,
    what: str = "data",
) -> Cached | None:
    """The stored arrays for `key`, or None when the file is absent or unusable (the latter with a warning)."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with open(path, "rb") as handle:
            if handle.read(4) != ZIP_MAGIC:  # np.load would call anything else a pickle
                return _unusable(path, what, "not an .npz archive")
        with np.load(path, allow_pickle=False) as archive:
            stored_key = str(archive[KEY]) if KEY in archive.files else None
            meta = json.loads(str(archive[META])) if META in archive.files else {}
            arrays = {name: archive[name] for name in archive.files if name not in (KEY, META)}
    except Exception as error:  # truncated, not a zip, a pickle, bad JSON: all mean "build it again"
        return _unusable(path, what, f"unreadable: {type(error).__name__}: {error}")
    if stored_key != key:
        return _unusable(path, what, "made for other inputs" if stored_key else "no key (an older or foreign file)")
    missing = sorted(set(names) - set(arrays))
    if missing:
        return _unusable(path, what, f"lacks {', '.join(missing)}")
    reason = check(arrays, meta) if check is not None else None
    if reason:
        return _unusable(path, what, reason)
    return Cached(arrays, meta, from_cache=True)


def write(path: Path, key: str, arrays: dict[str, np.ndarray], meta: dict[str, Any] | None = None, *,
          what: str = "data") -> bool:  # fmt: skip
    """Store `arrays` for `key` atomically; False (with a warning) when the cache cannot be written."""
    path = Path(path)
    reserved = {KEY, META} & set(arrays)
    if reserved:
        raise ValueError(f"array names {sorted(reserved)} are reserved by the cache")
    try:
        with results.atomic_file(path) as file:  # a file object: np.savez would append ".npz" to a name
            np.savez(file, **{KEY: np.array(key), META: np.array(json.dumps(meta or {}))}, **arrays)
        return True
    except OSError as error:
        warnings.warn(f"{what}: cannot write the cache file {path} ({error}); continuing without it", stacklevel=3)
        return False


def shape_mismatch(arrays: dict[str, np.ndarray], expected: dict[str, tuple[tuple[int, ...], Any]]) -> str | None:
    """A `check` for `cached`: the first array whose shape or dtype is not the expected (shape, dtype), or None."""
    for name, (shape, dtype) in expected.items():
        value = arrays[name]
        if value.shape != tuple(shape) or value.dtype != np.dtype(dtype):
            return f"{name} is {value.dtype}{list(value.shape)}, expected {np.dtype(dtype)}{list(shape)}"
    return None


def _unusable(path: Path, what: str, reason: str) -> None:
    warnings.warn(f"{what}: unusable cache file {path} ({reason}); building it again", stacklevel=4)
    return None
