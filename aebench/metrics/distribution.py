"""Distribution metrics on features: the Fréchet distance (FID when the features come from a named extractor)."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from aebench.errors import AebenchError
from aebench.features import FeatureExtractor
from aebench.metrics.base import Metric, check_finite
from aebench.registry import metrics


def gaussian_stats(features: Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (ddof 1) of (N, D) features, in float64."""
    f = np.asarray(features.detach().cpu() if isinstance(features, Tensor) else features, dtype=np.float64)
    if f.ndim != 2 or len(f) < 2:
        raise AebenchError(f"fid: expected (N ≥ 2, D) features, got shape {f.shape}")
    return f.mean(axis=0), np.cov(f, rowvar=False, ddof=1).reshape(f.shape[1], f.shape[1])


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """‖μ1 − μ2‖² + tr(Σ1 + Σ2 − 2 (Σ1 Σ2)^½), in float64.

    tr (Σ1 Σ2)^½ equals the sum of the square roots of the eigenvalues of the symmetric PSD matrix
    Σ1^½ Σ2 Σ1^½, which two symmetric eigendecompositions give without the general `sqrtm`.
    """
    values, vectors = np.linalg.eigh(cov1)
    root1 = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    middle = root1 @ cov2 @ root1
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2 * trace_sqrt)


@metrics.register("fid")
class FrechetInceptionDistance(Metric):
    """Fréchet distance between real and generated images in the feature space of a named extractor."""

    name = "fid"
    higher_is_better = False
    description = "Fréchet distance of Gaussian fits to real and generated features (extractor named per value)"

    def __init__(self, extractor: FeatureExtractor) -> None:
        super().__init__()
        self.extractor = extractor
        self.add_state("real_features", [])
        self.add_state("fake_features", [])

    def update(self, images: Tensor, real: bool) -> None:
        check_finite(images, "fid")
        with torch.no_grad():
            features = self.extractor.features(images).double().cpu()
        (self.real_features if real else self.fake_features).append(features)

    def compute(self) -> float:
        if not self.real_features or not self.fake_features:
            raise AebenchError("fid: both real and generated images are needed")
        real = gaussian_stats(torch.cat(self.real_features))
        fake = gaussian_stats(torch.cat(self.fake_features))
        return frechet_distance(*real, *fake)
