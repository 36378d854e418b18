"""Offline feature spaces for FID-like metrics: a small CNN trained once, deterministically, on a task's real data.

Inception weights need a download and fit astronomical or printed images badly; the usual offline stand-in is a
network trained on the task's own training split. With labels it is a classifier (features: its penultimate
layer after ReLU; quality: test accuracy); without, an auto-encoder (features: its bottleneck; quality: test
reconstruction MSE). The weights are cached under `cache_dir/extractors` by a hash of (training data, config,
code version), so every run on the same data measures in the same space.

Retrained on another CPU, the same config on the same data gives other weights (its float kernels round in another
order, and training amplifies the difference), hence another feature space: every description carries a digest of
the weights themselves, and leaderboards and `compare` never put values of two trainings in one column. The weights
trained on a task's embedded default data (and on the real data of a committed table, one file per data) are
committed beside the task (`extractors/` in the folder of the subclass's module, written by
`scripts/ship_extractors.py`) and read before the cache, so that every machine measures that data in the committed
tables' space. A task registers a named subclass:

    @extractors.register("galaxy-cnn")
    class GalaxyCNN(TrainedImageExtractor):
        name = "galaxy-cnn"
        description = "penultimate features of a CNN classifier trained on the training galaxies"
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from aebench import results
from aebench.errors import AebenchError
from aebench.features import FeatureExtractor
from aebench.hashing import content_hash

# Bump when the networks or their training change: cached weights of an older version are then not reused.
CODE_VERSION = "2"
OBJECTIVES = ("classifier", "autoencoder")


@dataclass(frozen=True)
class TrainedExtractorConfig:
    objective: str = "classifier"  # classifier (needs labels) | autoencoder
    channels: tuple[int, ...] = (16, 32)  # one stride-2 convolution per entry
    feature_dim: int = 128
    epochs: int = 10
    batch_size: int = 128
    lr: float = 2e-3
    seed: int = 0

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise AebenchError(f"extractor objective must be one of {OBJECTIVES}, got {self.objective!r}")


def _spatial_sizes(height: int, width: int, stages: int) -> list[tuple[int, int]]:
    sizes = [(height, width)]
    for _ in range(stages):
        h, w = sizes[-1]
        if min(h, w) < 2:
            raise AebenchError(f"images of {height}×{width} are too small for {stages} stride-2 stages")
        sizes.append((h // 2, w // 2))  # Conv2d(kernel 4, stride 2, padding 1)
    return sizes


class FeatureCNN(nn.Module):
    """Strided convolutions, a linear embedding, and a head: class logits or a mirrored decoder."""

    def __init__(self, image_shape: tuple[int, int, int], config: TrainedExtractorConfig, n_classes: int | None):
        super().__init__()
        c, h, w = image_shape
        sizes = _spatial_sizes(h, w, len(config.channels))
        widths = [c, *config.channels]
        # Strided convolutions rather than max-pooling: on 28×28 digits, a third of the CPU time for the same accuracy.
        stages = [(nn.Conv2d(a, b, 4, stride=2, padding=1), nn.ReLU()) for a, b in zip(widths, widths[1:])]
        self.conv = nn.Sequential(*[layer for stage in stages for layer in stage])
        last_h, last_w = sizes[-1]
        flat = widths[-1] * last_h * last_w
        self.embed = nn.Sequential(nn.Flatten(), nn.Linear(flat, config.feature_dim))
        self.classifier = config.objective == "classifier"
        if self.classifier:
            self.head: nn.Module = nn.Sequential(nn.ReLU(), nn.Linear(config.feature_dim, n_classes or 0))
        else:
            layers: list[nn.Module] = [
                nn.Linear(config.feature_dim, flat), nn.ReLU(), nn.Unflatten(1, (widths[-1], last_h, last_w))
            ]  # fmt: skip
            for i in range(len(config.channels), 0, -1):
                (h_out, w_out), (h_in, w_in) = sizes[i - 1], sizes[i]
                padding = (h_out - 2 * h_in, w_out - 2 * w_in)  # odd sizes (7 → 14 → 28 vs 25 → 12 → 25) come back
                layers.append(nn.ConvTranspose2d(widths[i], widths[i - 1], 4, 2, 1, output_padding=padding))
                if i > 1:
                    layers.append(nn.ReLU())
            self.head = nn.Sequential(*layers)

    def features(self, x: Tensor) -> Tensor:
        z = self.embed(self.conv(x))  # (B, feature_dim)
        return torch.relu(z) if self.classifier else z

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.embed(self.conv(x)))  # (B, n_classes) logits, or (B, C, H, W) reconstruction

    def loss(self, x: Tensor, y: Tensor | None) -> Tensor:
        out = self(x)
        return nn.functional.cross_entropy(out, y) if self.classifier else nn.functional.mse_loss(out, x)


def weights_digest(network: nn.Module) -> str:
    """sha256 of the network's parameters and buffers (names, dtypes, shapes, bytes): two trainings that differ in a
    single bit have different digests."""
    return content_hash(network.state_dict())


class TrainedImageExtractor(FeatureExtractor):
    """A FeatureCNN trained on a task's training images; subclasses give it a registered name."""

    # Weights committed with the task, read before the cache; None: `extractors/` beside the subclass's module.
    shipped_dir: ClassVar[Path | None] = None

    def __init__(
        self,
        network: FeatureCNN,
        config: TrainedExtractorConfig,
        key: str,
        train_size: int,
        quality: dict,
        feature_rms: float,
    ) -> None:
        self.network = network.eval()
        self.config = config
        self.key = key
        self.train_size = train_size
        self.quality = quality
        # RMS of the features of the training images: the scale KID's cubic kernel needs them divided by.
        self.feature_rms = feature_rms
        self.weights = weights_digest(network)
        self.from_cache = False  # set by `for_images`; lets callers (and tests) see whether it trained
        self.shipped = False  # set by `for_images` when the weights are the ones committed with the task

    @classmethod
    def shipped_folder(cls) -> Path:
        return cls.shipped_dir or Path(inspect.getfile(cls)).parent / "extractors"

    @classmethod
    def for_images(
        cls,
        train_images: Tensor,
        test_images: Tensor,
        cache_dir: Path,
        config: TrainedExtractorConfig | None = None,
        train_labels: Tensor | None = None,
        test_labels: Tensor | None = None,
    ) -> TrainedImageExtractor:
        """The extractor for these images: from `cache_dir` when trained on the same data before, else trained."""
        config = config or TrainedExtractorConfig()
        if not cls.name:
            raise TypeError(f"{cls.__name__} needs a `name`: subclass TrainedImageExtractor for each feature space")
        if train_images.dim() != 4:
            raise AebenchError(f"{cls.name}: images must be (N, C, H, W), got {tuple(train_images.shape)}")
        if config.objective == "classifier" and (train_labels is None or test_labels is None):
            raise AebenchError(f"{cls.name}: a classifier extractor needs train and test labels")
        n_classes = int(train_labels.max()) + 1 if config.objective == "classifier" else None
        settings = {"code": CODE_VERSION, "name": cls.name, "config": dataclasses.asdict(config)}
        text = json.dumps(settings, sort_keys=True)
        key = hashlib.sha256((text + content_hash(_arrays(train_images, train_labels))).encode()).hexdigest()
        filename = f"{cls.name}-{key[:16]}.pt"
        path = Path(cache_dir) / "extractors" / filename
        test_key = content_hash(_arrays(test_images, test_labels))
        shape = tuple(train_images.shape[1:])

        for where in (cls.shipped_folder() / filename, path):
            cached = _load(where, key, shape, config, n_classes, cls.name)
            if cached is None:
                continue
            network, payload = cached
            quality = payload["quality"] if payload.get("test_key") == test_key else None
            extractor = cls(network, config, key, int(payload["train_size"]), quality or {}, payload["feature_rms"])
            extractor.from_cache, extractor.shipped = True, where != path
            if quality is None:  # same weights, another test split: measure again
                extractor.quality = _quality(network, test_images, test_labels)
            return extractor
        network = train(shape, n_classes, train_images, train_labels, config)
        quality = _quality(network, test_images, test_labels)
        extractor = cls(network, config, key, len(train_images), quality, _feature_rms(network, train_images))
        _save(path, extractor, test_key)
        return extractor

    @property
    def device(self) -> torch.device:
        return next(self.network.parameters()).device

    def to(self, device: torch.device | str) -> TrainedImageExtractor:
        self.network.to(device)
        return self

    def _batched(self, images: Tensor, method: Any, batch_size: int) -> Tensor:
        # Always float32, whatever autocast the caller runs under.
        with torch.no_grad(), torch.autocast(self.device.type, enabled=False):
            return torch.cat([method(batch.to(self.device, torch.float32)) for batch in images.split(batch_size)])

    def features(self, images: Tensor, batch_size: int = 500) -> Tensor:
        """(N, C, H, W) images → (N, feature_dim) features on the extractor's device."""
        return self._batched(images, self.network.features, batch_size)

    def predict(self, images: Tensor, batch_size: int = 500) -> Tensor:
        """(N,) predicted class ids (classifier extractors only)."""
        if not self.network.classifier:
            raise AebenchError(f"{self.name}: an auto-encoder extractor does not predict classes")
        return self._batched(images, lambda x: self.network(x).argmax(1), batch_size).cpu()

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "hash": self.key[:12],  # of the training data and config: what was asked for
            "weights": self.weights[:12],  # of the trained weights: which feature space it gave
            "objective": self.config.objective,
            "feature_dim": self.config.feature_dim,
            "train_size": self.train_size,
            "quality": self.quality,
            "feature_rms": round(self.feature_rms, 6),
        }


def _arrays(images: Tensor, labels: Tensor | None) -> dict[str, Tensor]:
    return {"images": images} if labels is None else {"images": images, "labels": labels}


def train(
    shape: tuple, n_classes: int | None, x: Tensor, y: Tensor | None, config: TrainedExtractorConfig
) -> FeatureCNN:
    """Initialisation and a fixed number of Adam epochs on one CPU thread, seeded, with deterministic kernels."""
    # Tasks first build extractors inside the runner's no_grad evaluation: training needs grad back.
    with _deterministic(config.seed), torch.inference_mode(False), torch.enable_grad():
        network = FeatureCNN(shape, config, n_classes)
        optimizer = torch.optim.Adam(network.parameters(), lr=config.lr)
        generator = torch.Generator().manual_seed(config.seed)
        x = x.detach().cpu().float().clone()
        y = None if y is None else y.detach().cpu().long().clone()
        network.train()
        for _ in range(config.epochs):
            for index in torch.randperm(len(x), generator=generator).split(config.batch_size):
                loss = network.loss(x[index], None if y is None else y[index])
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


def _quality(network: FeatureCNN, x: Tensor, y: Tensor | None) -> dict[str, float]:
    """Test accuracy of a classifier, test reconstruction MSE of an auto-encoder."""
    with torch.no_grad():
        if network.classifier:
            predictions = torch.cat([network(batch.float()).argmax(1) for batch in x.cpu().split(500)])
            return {"test_accuracy": round(float((predictions == y.cpu()).float().mean()), 4)}
        squared = sum(float(((network(b.float()) - b.float()) ** 2).sum()) for b in x.cpu().split(500))
        return {"test_mse": float(f"{squared / x.numel():.4g}")}


def _feature_rms(network: FeatureCNN, x: Tensor) -> float:
    with torch.no_grad():
        squared = sum(float(network.features(b.float()).double().pow(2).sum()) for b in x.cpu().split(500))
    return (squared / (len(x) * network.embed[-1].out_features)) ** 0.5


def _save(path: Path, extractor: TrainedImageExtractor, test_key: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "key": extractor.key,
        "state_dict": extractor.network.state_dict(),
        "train_size": extractor.train_size,
        "quality": extractor.quality,
        "feature_rms": extractor.feature_rms,
        "test_key": test_key,
    }
    with results.atomic_file(path) as handle:  # a concurrent or interrupted run never leaves a half-written file
        torch.save(payload, handle)


def _load(
    path: Path, key: str, shape: tuple, config: TrainedExtractorConfig, n_classes: int | None, name: str
) -> tuple[FeatureCNN, dict] | None:
    """The cached network and its payload, or None when there is none or it is unusable (it is then retrained)."""
    if not path.is_file():
        return None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if payload["key"] != key:
            raise ValueError("the file belongs to other data or another config")
        network = FeatureCNN(shape, config, n_classes)
        network.load_state_dict(payload["state_dict"])
        int(payload["train_size"]), dict(payload["quality"]), float(payload["feature_rms"])
    except Exception as error:  # any unreadable cache is rebuilt, never fatal
        warnings.warn(f"{name}: ignoring unusable cache file {path} ({error!r}); retraining", stacklevel=3)
        return None
    return network.eval(), payload
