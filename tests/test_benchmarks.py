"""pytest-benchmark: FID (ours vs the scipy `sqrtm` path) at 64 and 2048 dims, SSIM (ours vs scikit-image).

The suite runs with `--benchmark-disable`, so each benchmark here runs its function once as a plain test that also
checks the value against the reference. `make benchmark` (or `pytest tests/test_benchmarks.py --benchmark-enable`)
times them; the scipy `sqrtm` at 2048 dims (tens of seconds) runs only then.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import scipy.linalg
import torch
from skimage.metrics import structural_similarity

from aebench.metrics import frechet_distance, gaussian_stats, ssim_per_image

N_FEATURES = 3000  # samples per side


@functools.cache
def fid_stats(dim: int) -> tuple[np.ndarray, ...]:
    """Gaussian fits to two well-conditioned random feature sets: real ~ N(0, MMᵀ), generated shifted and scaled."""
    rng = np.random.default_rng(dim)
    mixing = np.eye(dim) + 0.3 * rng.normal(size=(dim, dim)) / np.sqrt(dim)
    real = rng.normal(size=(N_FEATURES, dim)) @ mixing
    fake = (rng.normal(loc=0.1, size=(N_FEATURES, dim)) * rng.uniform(0.8, 1.2, size=dim)) @ mixing
    return (*gaussian_stats(real), *gaussian_stats(fake))


def scipy_sqrtm_fid(mu1, cov1, mu2, cov2) -> float:
    """The common reference (pytorch-fid): ‖μ1 − μ2‖² + tr(Σ1 + Σ2 − 2 sqrtm(Σ1 Σ2))."""
    root = scipy.linalg.sqrtm(cov1 @ cov2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(cov1) + np.trace(cov2) - 2 * np.trace(root))


@pytest.mark.parametrize("dim", [64, 2048])
def test_fid_ours(benchmark, dim):
    benchmark.group = f"fid-{dim}d"
    stats = fid_stats(dim)
    value = benchmark.pedantic(frechet_distance, args=stats, rounds=3 if dim > 512 else 200, warmup_rounds=1)
    if dim <= 512:  # the reference at 2048 dims is checked by test_fid_scipy_sqrtm, which computes it anyway
        assert value == pytest.approx(scipy_sqrtm_fid(*stats), rel=1e-6)


@pytest.mark.parametrize("dim", [64, 2048])
def test_fid_scipy_sqrtm(benchmark, dim):
    benchmark.group = f"fid-{dim}d"
    if dim > 512 and benchmark.disabled:
        pytest.skip("scipy sqrtm at 2048 dims takes tens of seconds; it runs with --benchmark-enable")
    stats = fid_stats(dim)
    value = benchmark.pedantic(scipy_sqrtm_fid, args=stats, rounds=1 if dim > 512 else 200)
    assert frechet_distance(*stats) == pytest.approx(value, rel=1e-6)


@functools.cache
def ssim_batch() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    a = torch.rand(16, 1, 256, 256, generator=generator, dtype=torch.float64)
    b = (a + 0.1 * torch.randn(a.shape, generator=generator, dtype=torch.float64)).clamp(0, 1)
    return a, b


def skimage_ssim(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    kwargs = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0)
    return np.array([structural_similarity(x[0], y[0], **kwargs) for x, y in zip(a, b)])


def test_ssim_ours(benchmark):
    benchmark.group = "ssim-16x1x256x256"
    a, b = ssim_batch()
    values = benchmark.pedantic(ssim_per_image, args=(a, b, 1.0), rounds=20, warmup_rounds=1)
    np.testing.assert_allclose(values.numpy(), skimage_ssim(a.numpy(), b.numpy()), atol=1e-9)


def test_ssim_skimage(benchmark):
    benchmark.group = "ssim-16x1x256x256"
    a, b = (t.numpy() for t in ssim_batch())
    values = benchmark.pedantic(skimage_ssim, args=(a, b), rounds=20, warmup_rounds=1)
    np.testing.assert_allclose(values, ssim_per_image(*ssim_batch(), 1.0).numpy(), atol=1e-9)
