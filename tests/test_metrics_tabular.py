"""FPD, KPD and the classifier two-sample test (aebench.metrics.tabular) against JetNet 0.2.5 and on known cases."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import linalg
from scipy.optimize import curve_fit
from scipy.stats import iqr

from aebench.errors import AebenchError
from aebench.metrics import (
    ClassifierTwoSampleTest,
    FrechetPhysicsDistance,
    KernelPhysicsDistance,
    classifier_two_sample_test,
    distribution,
    fpd_batch_means,
    fpd_range,
    frechet_physics_distance,
    kernel_physics_distance,
    kernel_physics_distance_batches,
    tabular,
)
from aebench.metrics.tabular import _pooled_mmd2

# --- JetNet 0.2.5, jetnet/evaluation/gen_metrics.py, transcribed -------------------------------------------------
# jetnet 0.2.5 cannot be imported here: `jetnet.evaluation` imports energyflow, whose `wasserstein` extension was
# built against numpy 1 and fails to import under numpy 2, plus numba and coffea (and through them dask, uproot,
# ...), none of which aebench needs. So its two functions are copied below line by line, with only `@njit` taken
# off (numba compiles the same numpy expressions) and the unused `num_threads` branch, the sample-size warning and
# the tensor conversion dropped. Checked once against the real package (installed with numba and coffea in a
# separate environment, energyflow's unused imports stubbed) on this file's data: FPD to the last digit, KPD within
# 5e-11 relative (numba's compiled sums run in another order).


def _jetnet_calculate_frechet_distance(mu1, sigma1, mu2, sigma2, eps=1e-6):
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    diff = mu1 - mu2
    with warnings.catch_warnings():  # scipy 1.17 deprecates `disp`; JetNet 0.2.5 passes it
        warnings.simplefilter("ignore", DeprecationWarning)
        covmean, _ = linalg.sqrtm(sigma1.dot(sigma2), disp=False)
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        covmean = covmean.real
    tr_covmean = np.trace(covmean)
    return diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_covmean


def _jetnet_normalise_features(X, Y=None):
    maxes = np.max(np.abs(X), axis=0)
    maxes[maxes == 0] = 1
    return (X / maxes, Y / maxes) if Y is not None else X / maxes


def _jetnet_linear(x, intercept, slope):
    return intercept + slope * x


def jetnet_fpd_points(real, gen, min_samples=20_000, max_samples=50_000, num_batches=20, num_points=10, seed=42):
    """`fpd` up to its fit: the batch sizes and the mean Fréchet distance at each."""
    X, Y = _jetnet_normalise_features(real, gen)
    batches = (1 / np.linspace(1.0 / min_samples, 1.0 / max_samples, num_points)).astype("int32")
    rng = np.random.default_rng(seed)
    vals = []
    for _, batch_size in enumerate(batches):
        val_points = []
        for _ in range(num_batches):
            rand1 = rng.choice(len(X), size=batch_size)
            rand2 = rng.choice(len(Y), size=batch_size)
            rand_sample1 = X[rand1]
            rand_sample2 = Y[rand2]
            mu1 = np.mean(rand_sample1, axis=0)
            sigma1 = np.cov(rand_sample1, rowvar=False)
            mu2 = np.mean(rand_sample2, axis=0)
            sigma2 = np.cov(rand_sample2, rowvar=False)
            val = _jetnet_calculate_frechet_distance(mu1, sigma1, mu2, sigma2)
            val_points.append(val)
        vals.append(np.mean(val_points))
    return batches, vals


def jetnet_fpd(real, gen, *args, **kwargs):
    batches, vals = jetnet_fpd_points(real, gen, *args, **kwargs)
    params, covs = curve_fit(_jetnet_linear, 1 / batches, vals, bounds=([0, 0], [np.inf, np.inf]))
    return (params[0], np.sqrt(np.diag(covs)[0]))


def _jetnet_mmd_poly_quadratic_unbiased(X, Y, degree=4):
    gamma = 1.0 / X.shape[-1]
    XX, YY, XY = ((A @ B.T * gamma + 1.0) ** degree for A, B in ((X, X), (Y, Y), (X, Y)))
    m, n = XX.shape[0], YY.shape[0]
    return (XX.sum() - np.trace(XX)) / (m * (m - 1)) + (YY.sum() - np.trace(YY)) / (n * (n - 1)) - 2 * np.mean(XY)


def jetnet_kpd_points(real, gen, num_batches=10, batch_size=5_000, seed=42):
    X, Y = _jetnet_normalise_features(real, gen)
    vals_point = []
    for i in range(num_batches):
        rng = np.random.default_rng(seed + i * 1000)
        rand1 = rng.choice(len(X), size=batch_size)
        rand2 = rng.choice(len(Y), size=batch_size)
        vals_point.append(_jetnet_mmd_poly_quadratic_unbiased(X[rand1], Y[rand2]))
    return vals_point


def jetnet_kpd(real, gen, *args, **kwargs):
    vals_point = jetnet_kpd_points(real, gen, *args, **kwargs)
    return (np.median(vals_point), iqr(vals_point, rng=(16.275, 83.725)) / 2)


# --- fixed data ----------------------------------------------------------------------------------------------------
def correlated(n: int, seed: int, shift: float = 0.0, rho: float = 0.45, d: int = 6) -> np.ndarray:
    """(n, d) Gaussian rows with neighbouring features correlated by rho, on scales 1 to 10⁵ (a GeV-like spread)."""
    cov = np.eye(d) + rho * (np.eye(d, k=1) + np.eye(d, k=-1))
    z = np.random.default_rng(seed).multivariate_normal(np.full(d, shift), cov, size=n)
    return z * np.logspace(0, 5, d) + np.arange(d)


def shuffled_columns(x: np.ndarray, seed: int) -> np.ndarray:
    """Each column permuted on its own: every marginal exact, every correlation gone."""
    rng = np.random.default_rng(seed)
    return np.stack([rng.permutation(column) for column in x.T], axis=1)


REAL, FAKE = correlated(3000, 0), correlated(2500, 1, shift=0.1, rho=0.3)


def test_fpd_equals_jetnet():
    """Every batch mean agrees to 1e-12; the extrapolation runs the same curve_fit, whose trust-region solver stops
    at a relative step of 1e-8, so means that differ in the 14th digit move the intercept by up to ~1e-8 (3e-9
    measured here and against the real package): the final value is compared at 1e-7."""
    for args in ((500, 2000, 20, 10, 3), (200, 1000, 5, 4, 42)):
        batches, means = fpd_batch_means(REAL, FAKE, *args[:4], seed=args[4])
        expected_batches, expected = jetnet_fpd_points(REAL, FAKE, *args)
        assert np.array_equal(batches, expected_batches)
        np.testing.assert_allclose(means, expected, rtol=1e-12)
        value, error = frechet_physics_distance(REAL, FAKE, *args[:4], seed=args[4])
        expected_value, expected_error = jetnet_fpd(REAL, FAKE, *args)
        assert value > 0.01 and value == pytest.approx(expected_value, rel=1e-7)
        assert error == pytest.approx(expected_error, rel=1e-5)
    # regular in 1/N, truncated: 1/N = 1/500 − k (1/500 − 1/2000)/9 gives 545.45… for k = 1 and 1199.99… for k = 7
    assert fpd_batch_means(REAL, FAKE, 500, 2000)[0].tolist() == [500, 545, 600, 666, 749, 857, 1000, 1199, 1499, 2000]


@pytest.mark.parametrize("n_real, n_fake, batch_size, pooled", [(3000, 2500, 800, False), (600, 500, 1200, True)])
def test_kpd_equals_jetnet(n_real, n_fake, batch_size, pooled, monkeypatch):
    """Batch by batch (the first case) and from the whole samples' kernel matrices (the second): both 1e-9, with
    kernel matrices built in row blocks of ~2¹⁴ entries, so that the pooled path's upper triangle spans many."""
    real, fake = REAL[:n_real], FAKE[:n_fake]
    monkeypatch.setattr(distribution, "BLOCK_ENTRIES", 2**14)
    calls = []
    monkeypatch.setattr(tabular, "_pooled_mmd2", lambda *a: calls.append(1) or _pooled_mmd2(*a))
    values = kernel_physics_distance_batches(real, fake, 10, batch_size, seed=5)
    assert bool(calls) == pooled
    np.testing.assert_allclose(values, jetnet_kpd_points(real, fake, 10, batch_size, seed=5), rtol=1e-9)
    value, error = kernel_physics_distance(real, fake, 10, batch_size, seed=5)
    expected_value, expected_error = jetnet_kpd(real, fake, 10, batch_size, seed=5)
    assert value > 1e-3 and value == pytest.approx(expected_value, rel=1e-9)
    assert error == pytest.approx(expected_error, rel=1e-9)


def test_one_distribution_scores_near_zero_and_a_correlation_loss_does_not():
    other = correlated(3000, 2)  # a second sample of REAL's distribution
    broken = shuffled_columns(other, seed=3)
    fpd_same, fpd_error = frechet_physics_distance(REAL, other, 500, 2000)
    fpd_broken, _ = frechet_physics_distance(REAL, broken, 500, 2000)
    assert fpd_same < 3 * fpd_error + 1e-4 and fpd_broken > 30 * fpd_same
    kpd_same, kpd_error = kernel_physics_distance(REAL, other, batch_size=3000)  # 1.2e-4 ± 2.3e-4
    kpd_broken, kpd_broken_error = kernel_physics_distance(REAL, broken, batch_size=3000)  # 2.0e-3 ± 2.4e-4
    assert abs(kpd_same) < 3 * kpd_error and kpd_broken > abs(kpd_same) + 5 * kpd_broken_error
    same, lost = (classifier_two_sample_test(REAL, x, seed=0, paired=True) for x in (other, broken))
    assert abs(same["auc"] - 0.5) < 3 * same["auc_null_std"] and lost["auc"] > 0.6
    assert same["train"] == same["test"] == [1500, 1500]


def test_the_same_seed_gives_the_same_values():
    for metric in (FrechetPhysicsDistance(min_samples=300, max_samples=900, seed=4),
                   KernelPhysicsDistance(batch_size=1000, seed=4), ClassifierTwoSampleTest(seed=4)):  # fmt: skip
        metric.update(REAL[:1000], real=True)
        metric.update(FAKE[:500], real=False)
        metric.update(FAKE[500:1000], real=False)
        first = metric.compute()
        metric.reset()
        metric.update(REAL[:1000], real=True)
        metric.update(FAKE[:1000], real=False)
        assert metric.compute() == first
    assert frechet_physics_distance(REAL, FAKE, 300, 900, seed=1) != frechet_physics_distance(REAL, FAKE, 300, 900)
    assert classifier_two_sample_test(REAL, FAKE, seed=1) != classifier_two_sample_test(REAL, FAKE, seed=2)


def test_metric_objects_and_the_scaled_range():
    assert fpd_range(160_000) == (20_000, 50_000) and fpd_range(5000) == (2000, 5000) and fpd_range(3) == (2, 3)
    fpd = FrechetPhysicsDistance()
    fpd.update(REAL, real=True)
    fpd.update(FAKE, real=False)
    result = fpd.compute()
    assert result["batch_sizes"] == [1000, 2500]
    assert result["fpd"] == frechet_physics_distance(REAL, FAKE, 1000, 2500)[0]
    kpd = KernelPhysicsDistance()
    kpd.update(REAL[:800], real=True)
    kpd.update(FAKE, real=False)
    assert kpd.compute()["batch_size"] == 800
    with pytest.raises(AebenchError, match="both real and generated"):
        ClassifierTwoSampleTest().compute()
    with pytest.raises(AebenchError, match="paired samples must have equal sizes"):
        classifier_two_sample_test(REAL, FAKE, paired=True)
    with pytest.raises(AebenchError, match="feature sizes differ"):
        frechet_physics_distance(REAL, FAKE[:, :3], 100, 200)
    with pytest.raises(AebenchError, match="NaN or infinite"):
        kernel_physics_distance(REAL, FAKE * np.nan)


def test_skip_constant_drops_a_feature_constant_in_the_real_sample():
    """A feature that is 0 in every real event (MET pz) and slightly noisy in generated ones lets a classifier tell
    the samples apart perfectly and breaks the Gaussian fit; `skip_constant` leaves it out of both samples, and the
    values equal those of the remaining features alone."""
    rng = np.random.default_rng(0)
    other = correlated(3000, 2)
    real = np.concatenate([REAL, np.zeros((len(REAL), 1))], axis=1)
    fake = np.concatenate([other, rng.normal(0, 1e-3, (len(other), 1))], axis=1)
    for make in (lambda **kw: ClassifierTwoSampleTest(seed=0, paired=True, **kw),
                 lambda **kw: FrechetPhysicsDistance(min_samples=500, max_samples=2000, **kw),
                 lambda **kw: KernelPhysicsDistance(batch_size=3000, **kw)):  # fmt: skip
        skipped, alone = make(skip_constant=True), make()
        skipped.update(real, real=True)
        skipped.update(fake, real=False)
        alone.update(REAL, real=True)
        alone.update(other, real=False)
        assert skipped.compute() == alone.compute()
    c2st = ClassifierTwoSampleTest(seed=0, paired=True)
    c2st.update(real, real=True)
    c2st.update(fake, real=False)
    assert c2st.compute()["auc"] > 0.99  # the constant feature alone gives every generated event away
