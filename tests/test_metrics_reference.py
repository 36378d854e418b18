"""PSNR, SSIM, FID, KID, PRDC, sliced Wasserstein and MMD against independent references on many inputs.

References: scikit-image (PSNR, SSIM), scipy `sqrtm` and closed forms (FID), numpy transcriptions of the papers'
formulas (KID, MMD, precision/recall/density/coverage with scipy's `cdist`), `scipy.stats.wasserstein_distance`.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import scipy.stats
import torch
from scipy.spatial.distance import cdist
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from aebench.errors import AebenchError
from aebench.features import FeatureExtractor
from aebench.metrics import (
    FrechetInceptionDistance,
    KernelInceptionDistance,
    MaximumMeanDiscrepancy,
    PeakSignalNoiseRatio,
    PrecisionRecallDensityCoverage,
    SlicedWasserstein,
    StructuralSimilarity,
    distribution,
    frechet_distance,
    gaussian_stats,
    kernel_inception_distance,
    precision_recall_density_coverage,
    psnr_per_image,
    random_directions,
    rbf_mmd2,
    sliced_wasserstein,
    ssim_per_image,
)
from aebench.metrics.base import as_numbers
from aebench.metrics.distribution import wasserstein_1d_rows

SEEDS = range(8)


# --- references ---------------------------------------------------------------------------------------------------


def reference_ssim(a: np.ndarray, b: np.ndarray, data_range: float) -> float:
    """scikit-image per image ((C, H, W) with the channel axis first, or (H, W)), then the mean over images."""
    kwargs = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=data_range)
    axis = {"channel_axis": 0} if a.ndim == 4 else {}
    return float(np.mean([structural_similarity(x, y, **kwargs, **axis) for x, y in zip(a, b)]))


def reference_psnr(a: np.ndarray, b: np.ndarray, data_range: float) -> float:
    with np.errstate(divide="ignore"):
        return float(np.mean([peak_signal_noise_ratio(x, y, data_range=data_range) for x, y in zip(a, b)]))


def reference_mmd2(x: np.ndarray, y: np.ndarray, kernel) -> float:
    """The unbiased estimator, term by term."""
    n, m = len(x), len(y)
    xx = sum(kernel(x[i], x[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    yy = sum(kernel(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(kernel(x[i], y[j]) for i in range(n) for j in range(m)) / (n * m)
    return xx + yy - 2 * xy


def reference_kid_subset(x: np.ndarray, y: np.ndarray) -> float:
    """Bińkowski et al.'s unbiased MMD² with k(a, b) = (a·b/d + 1)³, as matrices."""
    d, m = x.shape[1], len(x)
    kxx, kyy, kxy = ((x @ x.T / d + 1) ** 3, (y @ y.T / d + 1) ** 3, (x @ y.T / d + 1) ** 3)
    return (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.mean()


def reference_prdc(real: np.ndarray, fake: np.ndarray, k_pr: int, k_dc: int) -> dict[str, float]:
    """Kynkäänniemi et al. (precision, recall) and Naeem et al. (density, coverage), balls {z: ‖z − x‖ < r}."""
    real_real, fake_fake, real_fake = cdist(real, real), cdist(fake, fake), cdist(real, fake)
    radius = lambda distances, k: np.sort(distances, axis=1)[:, k]  # column 0 is the point itself  # noqa: E731
    real_pr, real_dc, fake_pr = radius(real_real, k_pr), radius(real_real, k_dc), radius(fake_fake, k_pr)
    return {
        "precision": float(
            np.mean([any(real_fake[i, j] < real_pr[i] for i in range(len(real))) for j in range(len(fake))])
        ),
        "recall": float(
            np.mean([any(real_fake[i, j] < fake_pr[j] for j in range(len(fake))) for i in range(len(real))])
        ),
        "density": float(sum((real_fake[:, j] < real_dc).sum() for j in range(len(fake))) / (k_dc * len(fake))),
        "coverage": float(np.mean(real_fake.min(axis=1) < real_dc)),
    }


def reference_w2(u: np.ndarray, v: np.ndarray) -> float:
    """W₂ of two 1-D samples of sizes n and m: repeat each sorted sample to n·m equal-weight atoms, then match."""
    a, b = np.repeat(np.sort(u), len(v)), np.repeat(np.sort(v), len(u))
    return float(np.sqrt(np.mean((a - b) ** 2)))


def reference_fid(a: np.ndarray, b: np.ndarray) -> float:
    mu1, mu2, s1, s2 = a.mean(0), b.mean(0), np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * scipy.linalg.sqrtm(s1 @ s2).real))


class Flatten(FeatureExtractor):
    name = "flatten"

    def features(self, images):
        return images.flatten(1)


def random_pair(seed: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Two image batches of a random shape, scale and noise level, in float64."""
    rng = np.random.default_rng(seed)
    n, h, w = rng.integers(1, 4), rng.integers(11, 40), rng.integers(11, 40)
    shape = (n, h, w) if seed % 3 == 0 else (n, [1, 3][seed % 2], h, w)
    low, data_range = [(0.0, 1.0), (0.0, 255.0), (-1.0, 2.0)][seed % 3]
    a = low + data_range * rng.random(shape) ** rng.uniform(0.5, 2)
    b = np.clip(a + rng.normal(scale=rng.uniform(0.01, 0.5) * data_range, size=shape), low, low + data_range)
    return a, b, data_range


# --- PSNR and SSIM ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_psnr_and_ssim_equal_scikit_image(seed):
    a, b, data_range = random_pair(seed)
    x, y = torch.from_numpy(a), torch.from_numpy(b)
    assert float(psnr_per_image(x, y, data_range).mean()) == pytest.approx(reference_psnr(a, b, data_range), rel=1e-9)
    assert float(ssim_per_image(x, y, data_range).mean()) == pytest.approx(reference_ssim(a, b, data_range), abs=1e-9)


def test_metrics_average_over_images_across_updates():
    a, b, _ = random_pair(1)
    a, b = np.concatenate([a, a[::-1] * 0.9]), np.concatenate([b, b * 0.8])  # 6 images, 3 channels
    for metric, reference in ((PeakSignalNoiseRatio(1.0), reference_psnr), (StructuralSimilarity(1.0), reference_ssim)):
        metric.update(torch.from_numpy(a[:2]).float(), torch.from_numpy(b[:2]).float())  # float32 in, float64 inside
        metric.update(torch.from_numpy(a[2:]).float(), torch.from_numpy(b[2:]).float())
        expected = reference(a.astype(np.float32).astype(np.float64), b.astype(np.float32).astype(np.float64), 1.0)
        assert metric.compute() == pytest.approx(expected, rel=1e-9)


def test_identical_and_constant_images():
    x = torch.rand(3, 1, 16, 16, dtype=torch.float64)
    assert ssim_per_image(x, x, 1.0).tolist() == pytest.approx([1.0] * 3, abs=1e-12)
    assert PeakSignalNoiseRatio(1.0)(x, x) == float("inf")  # as scikit-image, which also warns
    assert PeakSignalNoiseRatio(1.0)(torch.cat([x, x]), torch.cat([x, x * 0.5])) == float("inf")  # mean with an inf
    a, b = np.full((2, 12, 13), 0.25), np.full((2, 12, 13), 0.75)
    assert StructuralSimilarity(1.0)(torch.from_numpy(a), torch.from_numpy(b)) == pytest.approx(
        reference_ssim(a, b, 1.0), abs=1e-12
    )
    c1 = 0.01**2  # constant images: the SSIM reduces to the luminance term (2ab + C1)/(a² + b² + C1)
    assert reference_ssim(a, b, 1.0) == pytest.approx((2 * 0.25 * 0.75 + c1) / (0.25**2 + 0.75**2 + c1))
    assert PeakSignalNoiseRatio(1.0)(torch.from_numpy(a), torch.from_numpy(b)) == pytest.approx(
        reference_psnr(a, b, 1.0)
    )


def test_smallest_images_uint8_and_grayscale_shapes():
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 256, (4, 11, 11), dtype=np.uint8), rng.integers(0, 256, (4, 11, 11), dtype=np.uint8)
    ours = StructuralSimilarity(255).value_of(torch.from_numpy(a), torch.from_numpy(b))
    assert ours == pytest.approx(reference_ssim(a, b, 255), abs=1e-9)  # one window per image
    assert StructuralSimilarity(255)(torch.from_numpy(a)[:, None], torch.from_numpy(b)[:, None]) == ours
    assert PeakSignalNoiseRatio(255)(torch.from_numpy(a), torch.from_numpy(b)) == pytest.approx(
        reference_psnr(a, b, 255), rel=1e-9
    )


def test_image_metric_errors():
    x = torch.rand(2, 1, 16, 16)
    with pytest.raises(AebenchError, match="at least 11×11"):
        StructuralSimilarity(1.0)(torch.rand(2, 1, 10, 30), torch.rand(2, 1, 10, 30))
    with pytest.raises(AebenchError, match="NaN"):
        StructuralSimilarity(1.0)(x, torch.where(x > 0.5, float("nan"), x))
    with pytest.raises(AebenchError, match="NaN"):
        PeakSignalNoiseRatio(1.0)(torch.full_like(x, float("inf")), x)
    with pytest.raises(AebenchError, match="shapes differ"):
        PeakSignalNoiseRatio(1.0)(x, x[:1])
    for bad in (0, -1.0, float("nan"), None):
        with pytest.raises(AebenchError, match="data_range"):
            StructuralSimilarity(bad)
    with pytest.raises(AebenchError, match="no images"):
        PeakSignalNoiseRatio(1.0).compute()


# --- FID ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(3))
def test_frechet_distance_64_dims_equals_scipy_sqrtm(seed):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(3000, 64)) @ rng.normal(size=(64, 64))
    b = rng.normal(loc=0.2, size=(3000, 64)) @ rng.normal(size=(64, 64))
    assert frechet_distance(*gaussian_stats(a), *gaussian_stats(b)) == pytest.approx(reference_fid(a, b), rel=1e-6)


def test_frechet_distance_2048_dims_equals_a_closed_form():
    """Σ1 = A Aᵀ, Σ2 = A⁻ᵀ diag(s) A⁻¹: Σ1 Σ2 = A diag(s) A⁻¹ does not commute, yet tr (Σ1 Σ2)^½ = Σ √s.

    (The scipy `sqrtm` comparison at 2048 dims, on sample covariances of n = 3000, takes ~20 s or more here:
    it runs in tests/test_benchmarks.py when benchmarks are enabled.)
    """
    rng, d = np.random.default_rng(0), 2048
    a = np.eye(d) + 0.3 * rng.normal(size=(d, d)) / np.sqrt(d)  # singular values within about [0.4, 1.6]
    s = rng.uniform(0.5, 2.0, size=d)
    b = np.linalg.inv(a).T
    cov1, cov2 = a @ a.T, (b * s) @ b.T
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    expected = ((mu1 - mu2) ** 2).sum() + np.trace(cov1) + np.trace(cov2) - 2 * np.sqrt(s).sum()
    assert frechet_distance(mu1, cov1, mu2, cov2) == pytest.approx(expected, rel=1e-6)


def test_frechet_distance_of_singular_covariances():
    """Rank-deficient Σ1 (no Cholesky factor): commuting covariances give tr (Σ1 Σ2)^½ = Σ √(a b)."""
    rng, d = np.random.default_rng(1), 32
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    a, b = rng.uniform(0.5, 2, size=d), rng.uniform(0.5, 2, size=d)
    a[: d // 2] = 0  # half the directions have no variance
    with pytest.raises(np.linalg.LinAlgError):
        scipy.linalg.cholesky((q * a) @ q.T, lower=True)
    expected = np.trace((q * a) @ q.T) + np.trace((q * b) @ q.T) - 2 * np.sqrt(a * b).sum()
    assert frechet_distance(np.zeros(d), (q * a) @ q.T, np.zeros(d), (q * b) @ q.T) == pytest.approx(expected, rel=1e-6)
    features = rng.normal(size=(20, 50))  # fewer samples than dimensions: a singular sample covariance
    stats = gaussian_stats(features)
    # √ of the rounding-level eigenvalues of the null space (~1e-8 each) leaves ~1e-8 of the trace, as sqrtm does.
    assert frechet_distance(*stats, *stats) == pytest.approx(0, abs=1e-7 * np.trace(stats[1]))


# --- KID and MMD --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_kid_equals_the_formula_on_the_same_subsets(seed):
    rng = np.random.default_rng(seed)
    n_real, n_fake, d, subsets, size = 60 + seed, 50, rng.integers(2, 20), 5, rng.integers(2, 40)
    real, fake = rng.normal(size=(n_real, d)), rng.normal(loc=0.2, scale=1.3, size=(n_fake, d))
    generator, values = torch.Generator().manual_seed(seed), []
    for _ in range(subsets):  # the documented draws: randperm(real) then randperm(generated) per subset
        real_rows = torch.randperm(n_real, generator=generator)[:size].numpy()
        fake_rows = torch.randperm(n_fake, generator=generator)[:size].numpy()
        values.append(reference_kid_subset(real[real_rows], fake[fake_rows]))
    mean, std = kernel_inception_distance(real, fake, subsets=subsets, subset_size=size, seed=seed)
    assert mean == pytest.approx(np.mean(values), rel=1e-9, abs=1e-12)
    assert std == pytest.approx(np.std(values), rel=1e-7, abs=1e-12)


def test_kid_whole_sets_seeds_and_errors(monkeypatch):
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(30, 4)), rng.normal(size=(30, 4)) + 0.5
    calls = []
    original = distribution._unbiased_mmd2
    monkeypatch.setattr(distribution, "_unbiased_mmd2", lambda *args: calls.append(1) or original(*args))
    mean, std = kernel_inception_distance(real, fake, subsets=100, subset_size=30)  # every subset is the whole set
    assert mean == pytest.approx(reference_kid_subset(real, fake), rel=1e-9) and std == 0.0
    assert len(calls) == 1  # computed once, not 100 times
    monkeypatch.undo()
    assert kernel_inception_distance(real, fake, 4, 10, seed=1) == kernel_inception_distance(real, fake, 4, 10, seed=1)
    assert kernel_inception_distance(real, fake, 4, 10, seed=1) != kernel_inception_distance(real, fake, 4, 10, seed=2)
    scaled, _ = kernel_inception_distance(real * 7, fake * 7, subsets=3, subset_size=30, scale=7.0)
    assert scaled == pytest.approx(mean, rel=1e-12)  # `scale` divides the features before the kernel
    with pytest.raises(AebenchError, match="scale must be a positive"):
        kernel_inception_distance(real, fake, 2, 10, scale=0.0)
    with pytest.raises(AebenchError, match="subset_size"):
        kernel_inception_distance(real, fake, subsets=2, subset_size=31)
    with pytest.raises(AebenchError, match="NaN"):
        kernel_inception_distance(np.where(real > 1, np.nan, real), fake, 2, 10)
    with pytest.raises(AebenchError, match="feature sizes differ"):
        kernel_inception_distance(real, fake[:, :3], 2, 10)


@pytest.mark.parametrize("seed", SEEDS)
def test_mmd_equals_the_double_loop(seed, monkeypatch):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rng.integers(2, 25), rng.integers(1, 6)))
    y = rng.normal(loc=0.3, size=(rng.integers(2, 25), x.shape[1]))
    bandwidths = [0.5, 2.0] if seed % 2 else 1.5
    sigmas = np.atleast_1d(bandwidths)
    kernel = lambda a, b: sum(np.exp(-((a - b) ** 2).sum() / (2 * s * s)) for s in sigmas)  # noqa: E731
    expected = reference_mmd2(x, y, kernel)
    assert rbf_mmd2(x, y, bandwidths) == pytest.approx(expected, rel=1e-9, abs=1e-12)
    monkeypatch.setattr(distribution, "BLOCK_ENTRIES", 7)  # row blocks, and the diagonal skipped in each
    assert rbf_mmd2(x, y, bandwidths) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_mmd_errors():
    x = np.zeros((5, 2))
    for bad in (0, -1.0, [], [1.0, float("inf")]):
        with pytest.raises(AebenchError, match="bandwidths"):
            rbf_mmd2(x, x + 1, bad)
    with pytest.raises(AebenchError, match="N ≥ 2"):
        rbf_mmd2(x[:1], x, 1.0)


# --- precision, recall, density, coverage -------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_prdc_equals_the_papers_definitions(seed, monkeypatch):
    rng = np.random.default_rng(seed)
    d = rng.integers(1, 10)
    real = rng.normal(size=(rng.integers(10, 80), d))
    fake = rng.normal(loc=rng.uniform(0, 1), scale=rng.uniform(0.5, 2), size=(rng.integers(10, 80), d))
    k_pr, k_dc = (3, 5) if seed < 4 else (rng.integers(1, 9), rng.integers(1, 9))
    expected = reference_prdc(real, fake, k_pr, k_dc)
    assert precision_recall_density_coverage(real, fake, k_pr, k_dc) == pytest.approx(expected, rel=1e-12)
    monkeypatch.setattr(distribution, "BLOCK_ENTRIES", 50)  # several row blocks
    assert precision_recall_density_coverage(real, fake, k_pr, k_dc) == pytest.approx(expected, rel=1e-12)


def test_prdc_edge_cases():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(40, 3))
    same = precision_recall_density_coverage(real, real)  # each ball holds its centre and k − 1 neighbours
    assert same == {"precision": 1.0, "recall": 1.0, "density": 1.0, "coverage": 1.0}
    far = precision_recall_density_coverage(real, real + 100)
    assert far == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}
    with pytest.raises(AebenchError, match="k_pr"):
        precision_recall_density_coverage(real, real[:3], k_pr=3)
    with pytest.raises(AebenchError, match="NaN"):
        precision_recall_density_coverage(real, np.full((5, 3), np.nan))


# --- sliced Wasserstein -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_one_dimensional_wasserstein_equals_scipy_and_the_repeated_atoms(seed):
    rng = np.random.default_rng(seed)
    u = rng.normal(size=(4, rng.integers(1, 30)))
    v = rng.exponential(size=(4, rng.integers(1, 30)))
    w1 = wasserstein_1d_rows(torch.from_numpy(u), torch.from_numpy(v), p=1).numpy()
    w2 = wasserstein_1d_rows(torch.from_numpy(u), torch.from_numpy(v), p=2).numpy()
    np.testing.assert_allclose(w1, [scipy.stats.wasserstein_distance(a, b) for a, b in zip(u, v)], rtol=1e-9)
    np.testing.assert_allclose(w2, [reference_w2(a, b) for a, b in zip(u, v)], rtol=1e-9)
    same_size = rng.normal(size=(4, u.shape[1]))  # equal sizes: sorted samples matched one to one
    np.testing.assert_allclose(
        wasserstein_1d_rows(torch.from_numpy(u), torch.from_numpy(same_size)).numpy(),
        np.sqrt(np.mean((np.sort(u) - np.sort(same_size)) ** 2, axis=1)),
        rtol=1e-12,
    )


@pytest.mark.parametrize("seed", range(4))
def test_sliced_wasserstein_equals_the_mean_over_its_directions(seed):
    rng = np.random.default_rng(seed)
    d = rng.integers(2, 8)
    x, y = rng.normal(size=(rng.integers(5, 40), d)), rng.normal(loc=0.5, size=(rng.integers(5, 40), d))
    theta = random_directions(d, 50, seed).numpy()
    expected = np.sqrt(np.mean([reference_w2(x @ t, y @ t) ** 2 for t in theta]))
    assert sliced_wasserstein(x, y, projections=50, seed=seed) == pytest.approx(expected, rel=1e-9)


def test_sliced_wasserstein_exact_cases():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 1))
    y = rng.normal(size=(17, 1))
    # In one dimension every direction is ±1: SW₂ is W₂.
    assert sliced_wasserstein(x, y, projections=3) == pytest.approx(reference_w2(x[:, 0], y[:, 0]), rel=1e-12)
    x = rng.normal(size=(50, 4))
    shift = np.array([1.0, -2.0, 0.5, 0.0])
    theta = random_directions(4, 200, 0).numpy()  # a shift moves each projection by θ·c
    assert sliced_wasserstein(x, x + shift, projections=200) == pytest.approx(np.sqrt(np.mean((theta @ shift) ** 2)))
    assert sliced_wasserstein(x, x[::-1]) == pytest.approx(0, abs=1e-12)  # the same projected values, sorted
    assert sliced_wasserstein(x, x + shift, seed=1) != sliced_wasserstein(x, x + shift, seed=2)
    with pytest.raises(AebenchError, match="NaN"):
        sliced_wasserstein(x, np.full((3, 4), np.inf))


# --- the metric classes -------------------------------------------------------------------------------------------


def test_feature_metrics_gather_features_of_their_extractor():
    real, fake = torch.rand(40, 1, 2, 3, dtype=torch.float64), torch.rand(30, 1, 2, 3, dtype=torch.float64) * 0.5
    r, f = real.flatten(1), fake.flatten(1)
    cases = [
        (FrechetInceptionDistance(Flatten()), frechet_distance(*gaussian_stats(r), *gaussian_stats(f))),
        (
            KernelInceptionDistance(Flatten(), subsets=4, subset_size=20, seed=3),
            kernel_inception_distance(r, f, 4, 20, seed=3),  # (mean, std), as torchmetrics' KID
        ),
        (PrecisionRecallDensityCoverage(Flatten()), precision_recall_density_coverage(r, f, 3, 5)),
        (SlicedWasserstein(Flatten(), projections=30, seed=4), sliced_wasserstein(r, f, 30, 4)),
        (MaximumMeanDiscrepancy(Flatten(), bandwidths=[0.5, 1.0]), rbf_mmd2(r, f, [0.5, 1.0])),
    ]
    for metric, expected in cases:
        with pytest.raises(AebenchError, match="both real and generated"):
            metric.compute()
        metric.update(real[:25], real=True)
        metric.update(real[25:], real=True)
        metric.update(fake, real=False)
        assert metric.value() == expected  # the functional helper's numbers, bit for bit
        assert as_numbers(metric.compute()) == expected  # compute() gives them as float64 tensors
        assert metric.higher_is_better == (metric.name == "prdc") and metric.description
        with pytest.raises(AebenchError, match="NaN"):
            metric.update(torch.full((2, 1, 2, 3), float("nan")), real=False)
