"""The offline FID feature space of the MNIST tasks: a small digit classifier trained on the real training split.

Inception features need a download and fit 28×28 digits badly; a CNN trained once, deterministically, on the
task's own training digits is the usual offline stand-in (see aebench/trained_features.py, which trains and caches
it). Two stride-2 convolutions and two linear layers: 96.1 % test accuracy on the embedded digits.
"""

from __future__ import annotations

from pathlib import Path

from aebench.registry import extractors
from aebench.task import TaskData
from aebench.trained_features import TrainedExtractorConfig, TrainedImageExtractor

DIGIT_CNN = TrainedExtractorConfig(objective="classifier", channels=(16, 32), feature_dim=128, epochs=10)


@extractors.register("mnist-digit-cnn")
class DigitCNNExtractor(TrainedImageExtractor):
    name = "mnist-digit-cnn"
    description = "penultimate features (ReLU) of a 2-conv + 2-linear digit classifier trained on the train split"

    @classmethod
    def for_data(
        cls, data: TaskData, cache_dir: Path, config: TrainedExtractorConfig | None = None
    ) -> DigitCNNExtractor:
        """The extractor of `data`'s training digits (x, y), measured on its test digits."""
        train, test = data.train, data.test
        return cls.for_images(train["x"], test["x"], cache_dir, config or DIGIT_CNN, train["y"], test["y"])
