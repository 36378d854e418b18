"""The lines data of latent-lines: 32×32 grey images of one anti-aliased line from the centre outward at an angle θ.

`draw_line` is the authors' renderer (github.com/brain-research/acai, lib/data.py, `draw_line`) line for line: a
2-pixel-wide line from the centre (16, 16) to 15 pixels out (`x0 - 1`), each pixel lit by the share of it the line
covers, background −1 and line +1 (clipped to [−1, 1]). Their training set is an endless stream of lines at
θ = 2π·U[0, 1) from Python's unseeded `random`, their test set 5,000 lines of the same stream; here both are finite
and seeded (numpy's PCG64: train seed 0, test seed 1), so a seed gives the same bytes on every machine.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from aebench import cache
from aebench.hashing import content_hash
from aebench.model import DataSpec
from aebench.task import TaskData

SIZE = 32
N_CLASSES = 10  # the authors' label: int(10 θ / (2π − 1e-6)), the angle's tenth of a turn
SPEC = DataSpec(shape=(1, SIZE, SIZE), kind="image", value_range=(-1.0, 1.0), n_classes=N_CLASSES)
GENERATOR_VERSION = 1  # bump when draw_line or the sampling of angles changes: it is part of the cache key
GRID_LINES = 10_000  # the authors' closest_line: true lines at θ = 2π k / 10,000


@dataclass(frozen=True)
class EmbeddedConfig:
    """The embedded data set: lines at independent uniform angles."""

    n_train: int = 10_000
    n_test: int = 5_000  # the authors' lines32_test limit
    train_seed: int = 0
    test_seed: int = 1
    size: int = SIZE


def draw_line(angle: float, height: int = SIZE, width: int = SIZE, w: float = 2.0) -> np.ndarray:
    """One line image (height, width), float64 in [−1, 1]: the authors' `draw_line` (their (H, W, 1) squeezed)."""
    m = np.zeros((height, width))
    x0 = height * 0.5
    y0 = width * 0.5
    x1 = x0 + (x0 - 1) * math.cos(-angle)
    y1 = y0 + (y0 - 1) * math.sin(-angle)
    flip = False
    if abs(y0 - y1) < abs(x0 - x1):
        x0, x1, y0, y1 = y0, y1, x0, x1
        flip = True
    if y1 < y0:
        x0, x1, y0, y1 = x1, x0, y1, y0
    x0, x1 = x0 - w / 2, x1 - w / 2
    dx = x1 - x0
    dy = y1 - y0
    ds = dx / dy if dy != 0 else 0
    yi = int(math.ceil(y0)), int(y1)
    points = []
    for y in range(int(y0), int(math.ceil(y1))):
        if y < yi[0]:
            weight = yi[0] - y0
        elif y > yi[1]:
            weight = y1 - yi[1]
        else:
            weight = 1
        xs = x0 + (y - y0 - 0.5) * ds
        xe = xs + w
        xi = int(math.ceil(xs)), int(xe)
        if xi[0] != xi[1]:
            points.append((y, slice(xi[0], xi[1]), weight))
        if xi[0] != xs:
            points.append((y, int(xs), weight * (xi[0] - xs)))
        if xi[1] != xe:
            points.append((y, xi[1], weight * (xe - xi[1])))
    if flip:
        points = [(x, y, z) for y, x, z in points]
    for y, x, z in points:
        m[y, x] += 2 * z
    m -= 1
    return m.clip(-1, 1)


def draw_lines(angles: np.ndarray, size: int = SIZE) -> np.ndarray:
    """Line images (N, 1, size, size), float32, one per angle."""
    return np.stack([draw_line(float(a), size, size) for a in angles]).astype(np.float32)[:, None]


def labels_of(angles: np.ndarray) -> np.ndarray:
    return (N_CLASSES * angles / (2 * np.pi - 1e-6)).astype(np.int64)


def grid_angles() -> np.ndarray:
    """The authors' true-line angles for the closest-line search: linspace(0, 2π − 2π/10,000, 10,000)."""
    return np.linspace(0, 2 * np.pi - 2 * np.pi / GRID_LINES, GRID_LINES)


@lru_cache(maxsize=2)
def grid_lines(size: int = SIZE) -> torch.Tensor:
    """The true lines at `grid_angles()`, (10,000, size·size) float64; drawn once per process (about a second)."""
    return torch.from_numpy(np.stack([draw_line(float(a), size, size).ravel() for a in grid_angles()]))


def config_hash(config: EmbeddedConfig) -> str:
    return cache.key_of({"config": dataclasses.asdict(config), "version": GENERATOR_VERSION})


def generate(seed: int, n: int, size: int = SIZE) -> dict[str, np.ndarray]:
    """n lines at θ = 2π·U[0, 1) from numpy's PCG64 at `seed`: images (n, 1, size, size), angles, labels."""
    angles = 2 * np.pi * np.random.default_rng(seed).random(n)
    return {"x": draw_lines(angles, size), "angle": angles, "y": labels_of(angles)}


def load_embedded(cache_dir: Path, config: EmbeddedConfig = EmbeddedConfig()) -> TaskData:
    """The seeded lines, generated once per config and cached in `cache_dir/data`."""
    key = config_hash(config)

    def build() -> tuple[dict[str, np.ndarray], dict]:
        splits = {"train": generate(config.train_seed, config.n_train, config.size),
                  "test": generate(config.test_seed, config.n_test, config.size)}  # fmt: skip
        return {f"{split}_{k}": v for split, arrays in splits.items() for k, v in arrays.items()}, {}

    found = cache.cached(cache.cache_path(cache_dir, "latent-lines", key), key, build, what="latent-lines")
    arrays = found.arrays
    splits = {split: {k: torch.from_numpy(np.ascontiguousarray(arrays[f"{split}_{k}"])) for k in ("x", "angle", "y")}
              for split in ("train", "test")}  # fmt: skip
    spec = SPEC if config.size == SIZE else dataclasses.replace(SPEC, shape=(1, config.size, config.size))
    return TaskData(
        train=splits["train"],
        test=splits["test"],
        spec=spec,
        source="embedded: the ACAI paper's lines (the authors' draw_line), seeded angles",
        info={
            "split": {"train": config.n_train, "test": config.n_test},
            "generator": {**dataclasses.asdict(config), "version": GENERATOR_VERSION},
            "generator_hash": key[:12],
            "from_cache": found.from_cache,
            "split_method": "independent seeded draws of θ ~ 2π·U[0, 1) (train seed, test seed)",
            "sha256": {name: content_hash(split)[:12] for name, split in splits.items()},
        },
    )
