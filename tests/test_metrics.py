"""Metrics against independent reference implementations (scipy)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import scipy.ndimage
import torch

from aebench.errors import AebenchError
from aebench.features import FeatureExtractor
from aebench.metrics import FrechetInceptionDistance, MeanSquaredError, Sharpness, frechet_distance, gaussian_stats


def reference_sharpness(images: np.ndarray) -> float:
    """PIE: Laplace response of each image (interior pixels only), its variance, the mean over images."""
    kernel = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype=np.float64)
    values = [scipy.ndimage.correlate(image, kernel, mode="constant")[1:-1, 1:-1].var() for image in images]
    return float(np.mean(values))


def reference_fid(a: np.ndarray, b: np.ndarray) -> float:
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * root))


@pytest.mark.parametrize("seed", range(5))
def test_sharpness_equals_the_reference(seed):
    rng = np.random.default_rng(seed)
    images = rng.random((7, 28, 28)) ** rng.uniform(0.5, 3)
    metric = Sharpness()
    metric.update(torch.from_numpy(images[:3]).unsqueeze(1).float())
    metric.update(torch.from_numpy(images[3:]).float())
    assert metric.compute() == pytest.approx(reference_sharpness(images.astype(np.float32)), rel=1e-6)


def test_sharpness_edge_cases():
    assert Sharpness()(torch.full((2, 1, 5, 5), 0.7)) == 0.0  # a constant image has no edges
    checker = (torch.arange(25).view(5, 5) % 2).float()  # every interior pixel differs from its 4 neighbours
    expected = reference_sharpness(checker[None].numpy().astype(float))
    assert Sharpness().value_of(checker[None]) == pytest.approx(expected)
    with pytest.raises(AebenchError, match="NaN"):
        Sharpness()(torch.tensor([[[float("nan")] * 3] * 3]))
    with pytest.raises(AebenchError, match="grayscale"):
        Sharpness()(torch.rand(2, 3, 8, 8))


def test_mse_accumulates_over_batches():
    a, b = torch.rand(10, 1, 4, 4), torch.rand(10, 1, 4, 4)
    metric = MeanSquaredError()
    metric.update(a[:3], b[:3])
    metric.update(a[3:], b[3:])
    assert metric.compute() == pytest.approx(float(((a.double() - b.double()) ** 2).mean()), rel=1e-12)
    assert MeanSquaredError()(a, a) == 0.0


@pytest.mark.parametrize("dim, n", [(2, 50), (16, 200), (64, 100)])
def test_frechet_distance_equals_the_scipy_sqrtm_reference(dim, n):
    rng = np.random.default_rng(dim)
    a = rng.normal(size=(n, dim)) @ rng.normal(size=(dim, dim))
    b = rng.normal(loc=0.3, size=(n, dim)) @ rng.normal(size=(dim, dim))
    ours = frechet_distance(*gaussian_stats(a), *gaussian_stats(b))
    assert ours == pytest.approx(reference_fid(a, b), rel=1e-6)
    assert frechet_distance(*gaussian_stats(a), *gaussian_stats(a)) == pytest.approx(
        0, abs=1e-8 * np.trace(np.cov(a.T))
    )


class Flatten(FeatureExtractor):
    name = "flatten"

    def features(self, images):
        return images.flatten(1)


def test_fid_metric_uses_its_extractor_and_needs_both_sides():
    real, fake = torch.rand(40, 1, 2, 3), torch.rand(30, 1, 2, 3) * 0.5
    metric = FrechetInceptionDistance(Flatten())
    with pytest.raises(AebenchError, match="both real and generated"):
        metric.compute()
    metric.update(real[:20], real=True)
    metric.update(real[20:], real=True)
    metric.update(fake, real=False)
    assert metric.compute() == pytest.approx(
        reference_fid(real.flatten(1).double().numpy(), fake.flatten(1).double().numpy()), rel=1e-6
    )
