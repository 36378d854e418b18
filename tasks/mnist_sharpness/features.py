"""The offline FID feature space of the MNIST tasks: a small digit classifier trained on the real training split.

Inception features need a download and fit 28×28 digits badly; a CNN trained once, deterministically, on the
task's own training digits is the usual offline stand-in. Its weights are cached under the task's cache folder by
a hash of (training data, config, code version), so every run on the same data measures in the same space.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from aebench.features import FeatureExtractor
from aebench.registry import extractors
from aebench.task import TaskData

from .data import content_hash

# Bump when the network or its training changes: cached weights of an older version are then not reused.
CODE_VERSION = "1"


@dataclass(frozen=True)
class DigitCNNConfig:
    channels: tuple[int, int] = (16, 32)
    feature_dim: int = 128
    epochs: int = 10
    batch_size: int = 128
    lr: float = 2e-3
    seed: int = 0


class DigitCNN(nn.Module):
    """Two conv blocks and two linear layers; the features are the penultimate layer after its ReLU."""

    def __init__(self, config: DigitCNNConfig):
        super().__init__()
        c1, c2 = config.channels
        # Strided convolutions rather than max-pooling: a third of the CPU time for the same accuracy within 1%.
        self.conv = nn.Sequential(
            nn.Conv2d(1, c1, 4, stride=2, padding=1), nn.ReLU(),  # (B, c1, 14, 14)
            nn.Conv2d(c1, c2, 4, stride=2, padding=1), nn.ReLU(),  # (B, c2, 7, 7)
        )  # fmt: skip
        self.embed = nn.Sequential(nn.Flatten(), nn.Linear(c2 * 7 * 7, config.feature_dim), nn.ReLU())
        self.head = nn.Linear(config.feature_dim, 10)

    def features(self, x: Tensor) -> Tensor:
        return self.embed(self.conv(x))  # (B, feature_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))  # (B, 10) logits


@extractors.register("mnist-digit-cnn")
class DigitCNNExtractor(FeatureExtractor):
    name = "mnist-digit-cnn"
    description = "penultimate features (ReLU) of a 2-conv + 2-linear digit classifier trained on the train split"

    def __init__(
        self, network: DigitCNN, config: DigitCNNConfig, key: str, train_size: int, test_accuracy: float
    ) -> None:
        self.network = network.eval()
        self.config = config
        self.key = key
        self.train_size = train_size
        self.test_accuracy = test_accuracy
        self.from_cache = False  # set by `for_data`; lets callers (and tests) see whether it trained

    @classmethod
    def for_data(cls, data: TaskData, cache_dir: Path, config: DigitCNNConfig | None = None) -> DigitCNNExtractor:
        """The extractor for `data`: loaded from `cache_dir` when trained before on the same data, else trained."""
        config = config or DigitCNNConfig()
        key = cache_key(data, config)
        path = Path(cache_dir) / "extractors" / f"{cls.name}-{key[:16]}.pt"
        test_hash = content_hash(data.test)
        extractor = _load(path, config, key, test_hash, data)
        if extractor is not None:
            extractor.from_cache = True
            return extractor
        network = train(data.train["x"], data.train["y"], config)
        accuracy = _accuracy(network, data.test["x"], data.test["y"])
        extractor = cls(network, config, key, len(data.train["x"]), accuracy)
        _save(path, extractor, test_hash)
        return extractor

    @property
    def device(self) -> torch.device:
        return next(self.network.parameters()).device

    def to(self, device: torch.device | str) -> DigitCNNExtractor:
        self.network.to(device)
        return self

    def features(self, images: Tensor, batch_size: int = 1000) -> Tensor:
        """(N, 1, 28, 28) or (N, 28, 28) images in [0, 1] → (N, feature_dim) features on the extractor's device."""
        if images.dim() == 3:
            images = images.unsqueeze(1)
        out = []
        # Features are always computed in float32, whatever autocast the caller runs under.
        with torch.no_grad(), torch.autocast(self.device.type, enabled=False):
            for batch in images.split(batch_size):
                out.append(self.network.features(batch.to(self.device, torch.float32)))
        return torch.cat(out)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "hash": self.key[:12],
            "feature_dim": self.config.feature_dim,
            "test_accuracy": round(self.test_accuracy, 4),
            "train_size": self.train_size,
        }


def cache_key(data: TaskData, config: DigitCNNConfig) -> str:
    """sha256 of the training data, the config and the code version: equal keys mean equal trained weights."""
    text = json.dumps({"code": CODE_VERSION, "config": dataclasses.asdict(config)}, sort_keys=True)
    return hashlib.sha256((text + content_hash(data.train)).encode()).hexdigest()


def train(x: Tensor, y: Tensor, config: DigitCNNConfig) -> DigitCNN:
    """A fixed number of Adam epochs on one CPU thread with a fixed seed and deterministic kernels."""
    # The runner evaluates under no_grad, and the extractor is first built there: training needs grad back.
    with _deterministic(config.seed), torch.inference_mode(False), torch.enable_grad():
        network = DigitCNN(config)
        optimizer = torch.optim.Adam(network.parameters(), lr=config.lr)
        generator = torch.Generator().manual_seed(config.seed)
        x, y = x.detach().cpu().float().clone(), y.detach().cpu().long().clone()
        network.train()
        for _ in range(config.epochs):
            for index in torch.randperm(len(x), generator=generator).split(config.batch_size):
                loss = nn.functional.cross_entropy(network(x[index]), y[index])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
    return network.eval()


@contextmanager
def _deterministic(seed: int) -> Iterator[None]:
    """Seeded, deterministic, single-threaded kernels inside; the caller's settings are restored after.

    One thread makes the float reductions, hence the weights, independent of the machine's core count, and is
    also the fastest for so small a network (on a busy 2-core CPU, two threads took 30× longer).
    """
    enabled = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    threads = torch.get_num_threads()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        torch.use_deterministic_algorithms(True)
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(threads)
            torch.use_deterministic_algorithms(enabled, warn_only=warn_only)


def _accuracy(network: DigitCNN, x: Tensor, y: Tensor) -> float:
    with torch.no_grad():
        predictions = torch.cat([network(batch.float()).argmax(1) for batch in x.cpu().split(1000)])
    return float((predictions == y.cpu()).float().mean())


def _save(path: Path, extractor: DigitCNNExtractor, test_hash: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "key": extractor.key,
        "state_dict": extractor.network.state_dict(),
        "train_size": extractor.train_size,
        "test_accuracy": extractor.test_accuracy,
        "test_hash": test_hash,
    }
    # Write then rename, so a concurrent or interrupted run never leaves a half-written file behind.
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    torch.save(payload, partial)
    os.replace(partial, path)


def _load(path: Path, config: DigitCNNConfig, key: str, test_hash: str, data: TaskData) -> DigitCNNExtractor | None:
    """The cached extractor, or None when there is none or the file is unusable (it is then retrained)."""
    if not path.is_file():
        return None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if payload["key"] != key:
            raise ValueError("the file belongs to other data or another config")
        network = DigitCNN(config)
        network.load_state_dict(payload["state_dict"])
        accuracy = float(payload["test_accuracy"])
        train_size = int(payload["train_size"])
    except Exception as error:  # any unreadable cache is rebuilt, never fatal
        warnings.warn(f"mnist-digit-cnn: ignoring unusable cache file {path} ({error!r}); retraining", stacklevel=2)
        return None
    if payload.get("test_hash") != test_hash:  # same weights, another test split: measure again
        accuracy = _accuracy(network, data.test["x"], data.test["y"])
    return DigitCNNExtractor(network, config, key, train_size, accuracy)
