"""Galaxy images for the generation task: the embedded GalSim renders, or the published Galaxy10 DECaLS file.

Both return `TaskData` with x float32 (N, 3, H, W) in [-1, 1] (uint8 / 127.5 − 1: GANs end in tanh) and y int64
classes 0 = barred spiral, 1 = elliptical, 2 = spiral. Both are cached under `cache_dir/data` by a content key,
written to a temporary file and renamed, so a second load reads the cache instead of rendering or resizing again.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from aebench import cache
from aebench.errors import AebenchError
from aebench.hashing import content_hash
from aebench.model import DataSpec
from aebench.task import TaskData

from .render import CLASSES, RENDER_VERSION, RenderConfig, render_split

GALAXY10_FILE = "Galaxy10_DECals.h5"
GALAXY10_CLASSES = (
    "disturbed", "merging", "round smooth", "in-between round smooth", "cigar-shaped smooth", "barred spiral",
    "unbarred tight spiral", "unbarred loose spiral", "edge-on without bulge", "edge-on with bulge",
)  # fmt: skip
# Galaxy10 class → ours. Cigar-shaped smooth (4) is left out of "elliptical": many are inclined lenticular disks,
# and elongated smooth shapes would blur the bar-versus-elliptical distinction the classes are meant to test.
MERGE = {5: 0, 2: 1, 3: 1, 6: 2, 7: 2}
LOADER_VERSION = "1"  # bump when resizing or splitting changes: cached arrays of an older version are not reused
CHUNK = 256  # Galaxy10 images read and resized at a time: bounded memory for the 3.5 GB file

SPLIT_ARRAYS = ("train_x", "train_y", "test_x", "test_y")


def spec(size: int, n_classes: int = len(CLASSES)) -> DataSpec:
    return DataSpec(shape=(3, size, size), kind="image", value_range=(-1.0, 1.0), n_classes=n_classes)


# --- the embedded renders -----------------------------------------------------------------------------------------
def load_embedded(cache_dir: Path, config: RenderConfig | None = None) -> TaskData:
    """The GalSim galaxies of `config`, rendered once and then read from the cache."""
    config = config or RenderConfig()
    key = config.key()

    def render() -> tuple[dict[str, np.ndarray], dict]:
        started = time.perf_counter()
        train_x, train_y = render_split(config, "train")
        test_x, test_y = render_split(config, "test")
        arrays = {"train_x": train_x, "train_y": train_y, "test_x": test_x, "test_y": test_y}
        return arrays, {"render_seconds": round(time.perf_counter() - started, 1)}

    path = cache.cache_path(cache_dir, "galaxy-generation", key)
    arrays = cache.cached(path, key, render, names=SPLIT_ARRAYS, what="galaxy-generation").arrays
    return _task_data(
        arrays,
        spec(config.size),
        source=f"embedded: GalSim renders, {config.size}×{config.size} RGB",
        info={"generator": {"version": RENDER_VERSION, **dataclasses.asdict(config)}, "data_key": key[:12]},
    )


# --- Galaxy10 DECaLS ----------------------------------------------------------------------------------------------
def load_galaxy10(
    data_dir: Path,
    cache_dir: Path,
    size: int = 64,
    merge: bool = True,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> TaskData:
    """Galaxy10 DECaLS resized to `size` px, merged into our three classes (or all ten), split per class."""
    path = Path(data_dir).expanduser() / GALAXY10_FILE
    if not path.is_file():
        raise AebenchError(f"galaxy-generation: {path.parent} has no {GALAXY10_FILE} (Galaxy10 DECaLS, HDF5)")
    if not 0 < test_fraction < 1 or size < 8:
        raise AebenchError(f"galaxy10: need 0 < test_fraction < 1 and size ≥ 8, got {test_fraction}, {size}")
    stat = path.stat()
    options = {"size": size, "merge": merge, "test_fraction": test_fraction, "seed": seed}
    # The file is keyed by its name, size and modification time: hashing 2.7 GB on every load would take a minute.
    identity = {"file": str(path.resolve()), "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    key = cache.key_of({"version": LOADER_VERSION, "options": options, "file": identity})

    def read() -> tuple[dict[str, np.ndarray], dict]:
        images, labels = read_galaxy10(path, size, merge, test_fraction)
        train, test = _stratified_split(labels, test_fraction, seed)
        return {"train_x": images[train], "train_y": labels[train], "test_x": images[test], "test_y": labels[test]}, {}

    arrays = cache.cached(cache.cache_path(cache_dir, "galaxy10", key), key, read, names=SPLIT_ARRAYS,
                          what="galaxy-generation").arrays  # fmt: skip
    merged = "merged: 5 → barred spiral; 2, 3 → elliptical; 6, 7 → spiral; others dropped"
    return _task_data(
        arrays,
        spec(size, len(CLASSES) if merge else len(GALAXY10_CLASSES)),
        source=f"galaxy10-decals: {path}",
        info={
            "options": options,
            "classes": merged if merge else "all ten Galaxy10 classes",
            "split_method": f"stratified: per class, a seeded shuffle puts {test_fraction:.0%} in test",
            "data_key": key[:12],
        },
    )


def read_galaxy10(path: Path, size: int, merge: bool, test_fraction: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """(N, 3, size, size) uint8 images and (N,) int64 labels from a Galaxy10-format HDF5 file; the labels are
    checked against the per-class split of `test_fraction` before any image is read."""
    import h5py

    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise AebenchError(f"galaxy10: {path} is not a readable HDF5 file ({error})") from None
    with handle:
        missing = [name for name in ("images", "ans") if name not in handle]
        if missing:
            raise AebenchError(
                f"galaxy10: {path} has no dataset {', '.join(map(repr, missing))} "
                f"(found: {', '.join(sorted(handle)) or 'nothing'}); expected 'images' (N, H, W, 3) and 'ans' (N,)"
            )
        for name in ("images", "ans"):
            if not isinstance(handle[name], h5py.Dataset):
                raise AebenchError(
                    f"galaxy10: {path}: '{name}' is an HDF5 {type(handle[name]).__name__.lower()}, expected a dataset "
                    f"({'(N, H, W, 3) uint8' if name == 'images' else '(N,) labels 0–9'})"
                )
        images, answers = handle["images"], np.asarray(handle["ans"]).astype(np.int64)
        if images.ndim != 4 or images.shape[3] != 3 or images.dtype != np.uint8:
            raise AebenchError(f"galaxy10: 'images' is {images.dtype} {images.shape}, expected uint8 (N, H, W, 3)")
        if answers.shape != (len(images),):
            raise AebenchError(f"galaxy10: 'ans' has shape {answers.shape}, expected ({len(images)},) like 'images'")
        if answers.size and (answers.min() < 0 or answers.max() > 9):
            raise AebenchError(f"galaxy10: 'ans' holds labels {answers.min()}–{answers.max()}, expected 0–9")
        keep = np.flatnonzero(np.isin(answers, list(MERGE))) if merge else np.arange(len(answers))
        labels = np.array([MERGE[a] for a in answers[keep]], dtype=np.int64) if merge else answers
        _check_class_counts(path, labels, merge, test_fraction)
        out = np.empty((len(keep), 3, size, size), dtype=np.uint8)
        for start in range(0, len(keep), CHUNK):
            rows = keep[start : start + CHUNK]
            out[start : start + len(rows)] = resize(images[rows], size)  # h5py reads increasing indices
    return out, labels


def _check_class_counts(path: Path, labels: np.ndarray, merge: bool, test_fraction: float) -> None:
    """Every class of the task (each merged class; each class present when unmerged) needs an image in both
    splits of the per-class shuffle: a class absent from training or test makes its share and FID meaningless."""
    if merge and len(labels) == 0:
        raise AebenchError(
            f"galaxy10: {path} has no image of the merged classes (Galaxy10 labels "
            f"{', '.join(map(str, sorted(MERGE)))}: barred spiral, round and in-between smooth, unbarred spirals)"
        )
    names = CLASSES if merge else GALAXY10_CLASSES
    counts = np.bincount(labels, minlength=len(names))
    needed = min_per_class(test_fraction)
    for label in range(len(names)) if merge else np.flatnonzero(counts):
        if counts[label] < needed:
            raise AebenchError(
                f"galaxy10: {path} has {counts[label]} image(s) of class {names[label].replace('_', ' ')!r}; the "
                f"per-class split ({test_fraction:.0%} test) needs at least {needed} per class"
            )


def min_per_class(test_fraction: float) -> int:
    """The fewest images of a class that leave at least one in each split of `_stratified_split`."""
    n = 2
    while not 1 <= int(round(test_fraction * n)) <= n - 1:
        n += 1
    return n


def resize(images: np.ndarray, size: int) -> np.ndarray:
    """(N, H, W, 3) uint8 → (N, 3, size, size) uint8 by area averaging (exact block means for 256 → 64 or 128)."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float()  # (N, 3, H, W)
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="area")
    return x.round().clamp(0, 255).to(torch.uint8).numpy()


def _stratified_split(labels: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in np.unique(labels):
        index = rng.permutation(np.flatnonzero(labels == label))
        n_test = int(round(test_fraction * len(index)))
        test.append(index[:n_test])
        train.append(index[n_test:])
    # A second shuffle so that neither split is ordered by class.
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


# --- shared -------------------------------------------------------------------------------------------------------
def _task_data(arrays: dict[str, np.ndarray], data_spec: DataSpec, *, source: str, info: dict) -> TaskData:
    train = {"x": _images(arrays["train_x"]), "y": torch.from_numpy(arrays["train_y"].astype(np.int64))}
    test = {"x": _images(arrays["test_x"]), "y": torch.from_numpy(arrays["test_y"].astype(np.int64))}
    n_classes = data_spec.n_classes or 0
    return TaskData(
        train=train,
        test=test,
        spec=data_spec,
        source=source,
        info={
            "split": {"train": len(train["y"]), "test": len(test["y"])},
            "per_class": {
                "train": torch.bincount(train["y"], minlength=n_classes).tolist(),
                "test": torch.bincount(test["y"], minlength=n_classes).tolist(),
            },
            "normalisation": "x = uint8 / 127.5 - 1, in [-1, 1]; channels RGB",
            **info,
            "sha256": {
                name: content_hash({"x": split["x"], "y": split["y"]})[:12]
                for name, split in (("train", train), ("test", test))
            },
        },
    )


def _images(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(x).float().div_(127.5).sub_(1.0)  # (N, 3, H, W) in [-1, 1]
