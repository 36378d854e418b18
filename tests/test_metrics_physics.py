"""HEP per-feature metrics and the CDP Hamming metric against scipy, skimage and hand-written loops."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import torch

from aebench.errors import AebenchError
from aebench.metrics.binary import HammingOtsu, binarise_otsu, hamming_per_image, minmax_normalise, otsu_threshold
from aebench.metrics.physics import (
    BinnedKLDivergence,
    KolmogorovSmirnov,
    ReducedChi2Otus,
    ReducedChi2TurboSim,
    Wasserstein1D,
    Wasserstein2Squared1D,
    bin_edges,
    binned_kl,
    chi2_otus,
    chi2_otus_from_counts,
    chi2_truth_range,
    chi2_turbosim,
    chi2_turbosim_from_counts,
    histogram_counts,
    kl_from_counts,
    ks_statistic,
    reduce_features,
    wasserstein_1d,
)
from aebench.registry import metrics

SEEDS = range(6)


def samples(seed: int, n: int = 400, m: int = 300, d: int = 4) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True and generated samples that differ in shape, with empty bins and values outside the bins, and edges."""
    rng = np.random.default_rng(seed)
    true = rng.normal(size=(n, d)) * rng.uniform(0.5, 2, d)
    generated = rng.standard_t(5, size=(m, d)) * rng.uniform(0.5, 2, d) + rng.normal(0, 0.3, d)
    edges = bin_edges([(-3.0, 3.0 + j) for j in range(d)], n_bins=int(rng.integers(5, 25)))
    return true, generated, edges.numpy()


def reference_counts(x: np.ndarray, edges: np.ndarray, out_of_range: str) -> np.ndarray:
    if out_of_range == "clip":
        x = np.clip(x, edges[0], edges[-1])
    return np.histogram(x, bins=edges)[0].astype(float)


def reference_chi2_turbosim(n: np.ndarray, m: np.ndarray) -> float:
    scale, total = n.sum() / m.sum(), 0.0
    for i in range(len(n)):
        if n[i] > 0:
            total += (scale * m[i] - n[i]) ** 2 / n[i]
    return total / (len(n) - 1)


def reference_chi2_otus(n: np.ndarray, m: np.ndarray) -> float:
    """yiboyang/otus func_utils.py `ReducedChiSq` on the bins where both hold at least 5 counts (theirs asserts
    it), with the generated counts scaled to the true total (s = 1 for their equal-size samples)."""
    scale, total, used = n.sum() / m.sum(), 0.0, 0
    for i in range(len(n)):
        if n[i] >= 5 and m[i] >= 5:
            total += (n[i] - scale * m[i]) ** 2 / (n[i] + scale**2 * m[i])
            used += 1
    return total / (used - 1) if used > 1 else 0.0


def authors_chi2(truth: np.ndarray, generated: np.ndarray, nbins: int = 20) -> float:
    """quetant/turbo-sim-supplementary utils/metrics.py `_compute_chi2` with utils/plots.py `get_min_max`
    (min_count = −1), for one feature of equal-size samples; bins where the truth is empty are skipped."""
    counts, bins = np.histogram(truth, bins=nbins)
    kept = bins[:-1][counts > len(truth) // 200]
    bin_min, bin_max = kept.min(), kept.max()
    counts_ref, _ = np.histogram(truth, bins=nbins, range=(bin_min, bin_max))
    counts, _ = np.histogram(generated, bins=nbins, range=(bin_min, bin_max))
    c = 0.0
    for b in range(len(counts)):
        if counts_ref[b] > 0:
            c += (counts[b] - counts_ref[b]) ** 2 / counts_ref[b]
    return c / (len(counts) - 1)


def reference_wasserstein(a: np.ndarray, b: np.ndarray, p: int) -> float:
    """∫ |F⁻¹ − G⁻¹|^p over the midpoints of a grid on which both quantile functions are constant."""
    common = np.lcm(len(a), len(b))
    levels = (np.arange(common) + 0.5) / common
    qa = np.quantile(a, levels, method="inverted_cdf")
    qb = np.quantile(b, levels, method="inverted_cdf")
    return float(np.mean(np.abs(qa - qb) ** p) ** (1 / p))


# --- histograms -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("out_of_range", ["clip", "drop"])
def test_histogram_counts_equal_numpy(seed, out_of_range):
    true, _, edges = samples(seed)
    true[:5] = edges[:, :1].T  # values exactly on the first and last edge
    true[5:10] = edges[:, -1:].T
    counts = histogram_counts(true, edges, out_of_range).numpy()
    for j in range(true.shape[1]):
        np.testing.assert_array_equal(counts[j], reference_counts(true[:, j], edges[j], out_of_range))
    if out_of_range == "drop":  # the same as numpy's own equal-width bins from a range
        low, high = edges[0, 0], edges[0, -1]
        np.testing.assert_array_equal(counts[0], np.histogram(true[:, 0], edges.shape[1] - 1, (low, high))[0])


def test_histogram_shared_edges_and_bad_arguments():
    x = np.array([[0.5, -2.0], [1.5, 9.0]])
    np.testing.assert_array_equal(histogram_counts(x, [0.0, 1.0, 2.0]).numpy(), [[1, 1], [1, 1]])
    np.testing.assert_array_equal(histogram_counts(x, [0.0, 1.0, 2.0], "drop").numpy(), [[1, 1], [0, 0]])
    with pytest.raises(AebenchError, match="increasing"):
        histogram_counts(x, [0.0, 0.0, 1.0])
    with pytest.raises(AebenchError, match="bin edges"):
        histogram_counts(x, np.zeros((3, 4)))
    with pytest.raises(AebenchError, match="out_of_range"):
        histogram_counts(x, [0.0, 1.0], "wrap")
    with pytest.raises(AebenchError, match="low < high"):
        bin_edges([(1.0, 1.0)])


# --- binned KL and reduced χ² -------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("eps", [1e-10, 1e-3])
def test_binned_kl_equals_scipy_entropy(seed, eps):
    true, generated, edges = samples(seed)
    ours = binned_kl(true, generated, edges, eps=eps).numpy()
    for j in range(true.shape[1]):
        p = reference_counts(true[:, j], edges[j], "clip")
        q = reference_counts(generated[:, j], edges[j], "clip")
        expected = scipy.stats.entropy(p / p.sum() + eps, q / q.sum() + eps)
        assert ours[j] == pytest.approx(expected, rel=1e-10, abs=1e-14)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("out_of_range", ["clip", "drop"])
def test_reduced_chi2_equal_the_loops(seed, out_of_range):
    true, generated, edges = samples(seed)
    turbosim = chi2_turbosim(true, generated, edges, out_of_range).numpy()
    otus = chi2_otus(true, generated, edges, out_of_range).numpy()
    for j in range(true.shape[1]):
        n = reference_counts(true[:, j], edges[j], out_of_range)
        m = reference_counts(generated[:, j], edges[j], out_of_range)
        assert turbosim[j] == pytest.approx(reference_chi2_turbosim(n, m), rel=1e-12)
        assert otus[j] == pytest.approx(reference_chi2_otus(n, m), rel=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_chi2_over_the_truth_range_equals_the_authors_code(seed):
    rng = np.random.default_rng(seed)
    truth = np.column_stack([rng.normal(size=3000), rng.exponential(size=3000), rng.standard_t(3, size=3000)])
    generated = np.column_stack([rng.normal(0.1, 1.1, 3000), rng.exponential(1.2, 3000), rng.normal(size=3000)])
    ours = chi2_truth_range(truth, generated).numpy()
    for j in range(3):
        assert ours[j] == pytest.approx(authors_chi2(truth[:, j], generated[:, j]), rel=1e-12)
    # A generator that puts mass outside the truth's range is penalised (the fixed ranges' clipping hid it).
    escaped = truth.copy()
    escaped[:300] = 1e3
    assert (chi2_truth_range(truth, escaped).numpy() > 1).all() and (chi2_truth_range(truth, truth) == 0).all()


def test_tiny_example_by_hand():
    # n = (4, 0, 2, 2), m = (2, 2, 0, 0) counts; totals 8 and 4, so s = 2.
    n = torch.tensor([[4.0, 0.0, 2.0, 2.0]])
    m = torch.tensor([[2.0, 2.0, 0.0, 0.0]])
    # Turbo-Sim: bins with n > 0: (4-4)²/4 + (0-2)²/2 + (0-2)²/2 = 4, over 4 - 1 bins.
    assert float(chi2_turbosim_from_counts(n, m)) == pytest.approx(4 / 3)
    # OTUS: no bin holds 5 counts in both, so nothing to compare; with 10× the counts, the two bins with ≥ 5 in
    # both are the first two... the first only: (40-40)²/(40+80) = 0 over 1 bin − 1 = 0 dof → 0.
    assert float(chi2_otus_from_counts(n, m)) == 0.0
    big_n, big_m = torch.tensor([[40.0, 10.0, 20.0, 20.0]]), torch.tensor([[20.0, 5.0, 20.0, 0.0]])
    # s = 90 / 45 = 2; bins 0-2 qualify: 0/(40+80) + 0/(10+20) + (20-40)²/(20+80) = 4, over 3 − 1 dof.
    assert float(chi2_otus_from_counts(big_n, big_m)) == pytest.approx(2.0)
    # KL, P = (1/2, 0, 1/4, 1/4), Q = (1/2, 1/2, 0, 0): infinite without ε (Q misses bins P fills), finite with it.
    assert float(kl_from_counts(n, m, eps=0)) == float("inf")
    eps = 1e-10
    p = (np.array([0.5, 0, 0.25, 0.25]) + eps) / (1 + 4 * eps)
    q = (np.array([0.5, 0.5, 0, 0]) + eps) / (1 + 4 * eps)
    assert float(kl_from_counts(n, m, eps)) == pytest.approx(float(np.sum(p * np.log(p / q))), rel=1e-12)
    # KL of P to itself, and of a P with empty bins to a Q that fills them: 0·log 0 = 0, exact without ε.
    assert float(kl_from_counts(n, n, eps=0)) == 0.0
    flat = torch.ones(1, 4)
    assert float(kl_from_counts(n, flat, eps=0)) == pytest.approx(0.5 * np.log(0.5 / 0.25), rel=1e-15)


def test_binned_metrics_edge_cases():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 3))
    edges = bin_edges([(-2, 2)] * 3, n_bins=20)
    for helper in (binned_kl, chi2_turbosim, chi2_otus):
        assert torch.equal(helper(x, x, edges), torch.zeros(3, dtype=torch.float64))  # identical samples
    assert torch.equal(chi2_truth_range(x, x), torch.zeros(3, dtype=torch.float64))
    # Disjoint supports inside the range: KL is infinite without ε, and log(1/ε) − H(P) with it (H(P) ≤ log 5 here).
    low, high = rng.uniform(-2, -1, size=(200, 3)), rng.uniform(1, 2, size=(200, 3))
    assert torch.isinf(binned_kl(low, high, edges, eps=0)).all()
    disjoint = binned_kl(low, high, edges).numpy()
    assert ((np.log(1e10) - np.log(5) < disjoint) & (disjoint < np.log(1e10))).all()
    # Everything beyond the range: clipped into the last bin, or dropped (then no histogram: an error).
    far = x + 10
    assert (histogram_counts(far, edges).numpy()[:, -1] == 500).all()
    with pytest.raises(AebenchError, match="no entries"):
        binned_kl(x, far, edges, out_of_range="drop")
    # One filled bin: the OTUS χ² has no shape to compare and is 0; tiny samples still work.
    assert float(chi2_otus(np.zeros(50), np.zeros(30), [-1.0, 1.0, 2.0])[0]) == 0.0
    assert float(chi2_truth_range(np.zeros(50), np.ones(50))[0]) == 0.0  # a constant truth has no range
    assert float(chi2_turbosim(np.array([0.5]), np.array([1.5]), [0.0, 1.0, 2.0])[0]) == pytest.approx(1.0)
    with pytest.raises(AebenchError, match="at least 2 bins"):
        chi2_turbosim(x, x, [-1.0, 1.0])


# --- KS and Wasserstein -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_ks_and_wasserstein_equal_scipy(seed):
    true, generated, _ = samples(seed, n=int(10 + 37 * seed), m=int(5 + 29 * seed))
    if seed % 2:  # ties within and across samples
        true, generated = np.round(true), np.round(generated)
    ks = ks_statistic(true, generated).numpy()
    w1 = wasserstein_1d(true, generated).numpy()
    for j in range(true.shape[1]):
        assert ks[j] == pytest.approx(
            scipy.stats.ks_2samp(true[:, j], generated[:, j], method="asymp").statistic, abs=1e-15
        )
        assert w1[j] == pytest.approx(scipy.stats.wasserstein_distance(true[:, j], generated[:, j]), rel=1e-10)


@pytest.mark.parametrize("n, m", [(1, 1), (1, 7), (12, 8), (50, 50), (33, 20)])
def test_wasserstein_p_equals_the_quantile_reference(n, m):
    rng = np.random.default_rng(n * 100 + m)
    a, b = rng.exponential(size=(n, 2)), rng.normal(size=(m, 2))
    for p in (1, 2, 3):
        ours = wasserstein_1d(a, b, p=p).numpy()
        for j in range(2):
            assert ours[j] == pytest.approx(reference_wasserstein(a[:, j], b[:, j], p), rel=1e-10)
    if n == m:  # W₂² of equal-size samples: mean squared difference of the sorted values
        w2sq = Wasserstein2Squared1D()
        w2sq.update(a, real=True)
        w2sq.update(b, real=False)
        assert w2sq.per_feature().numpy() == pytest.approx(((np.sort(a, 0) - np.sort(b, 0)) ** 2).mean(0), rel=1e-10)


def test_ks_and_wasserstein_edge_cases():
    x = np.random.default_rng(1).normal(size=(100, 2))
    assert torch.equal(ks_statistic(x, x), torch.zeros(2, dtype=torch.float64))
    assert torch.equal(wasserstein_1d(x, x), torch.zeros(2, dtype=torch.float64))
    shifted = x - x.min() + x.max() + 1  # disjoint supports: KS is 1, W₁ is the mean shift
    assert torch.equal(ks_statistic(x, shifted), torch.ones(2, dtype=torch.float64))
    assert wasserstein_1d(x, shifted).numpy() == pytest.approx((shifted - x).mean(0))
    assert float(ks_statistic([0.0], [1.0])[0]) == 1.0 and float(ks_statistic([1.0], [1.0])[0]) == 0.0
    assert float(wasserstein_1d([0.0], [2.5])[0]) == 2.5
    with pytest.raises(AebenchError, match="features"):
        ks_statistic(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(AebenchError, match="p must be"):
        wasserstein_1d(x, x, p=0)


@pytest.mark.parametrize(
    "helper",
    [
        ks_statistic,
        wasserstein_1d,
        lambda a, b: binned_kl(a, b, [-1.0, 0.0, 1.0]),
        lambda a, b: chi2_otus(a, b, [-1.0, 0.0, 1.0]),
    ],
)
def test_nan_and_empty_input_are_errors(helper):
    good = np.zeros((4, 2))
    bad = good.copy()
    bad[1, 1] = np.nan
    with pytest.raises(AebenchError, match="NaN"):
        helper(good, bad)
    with pytest.raises(AebenchError, match="expected samples"):
        helper(good, np.zeros((0, 2)))


# --- the Metric classes -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(3))
def test_metric_classes_accumulate_batches_like_the_helpers(seed):
    true, generated, edges = samples(seed)
    cases = [
        (BinnedKLDivergence(edges), binned_kl(true, generated, edges)),
        (ReducedChi2TurboSim(edges), chi2_turbosim(true, generated, edges)),
        (ReducedChi2Otus(edges, out_of_range="drop"), chi2_otus(true, generated, edges, "drop")),
        (KolmogorovSmirnov(), ks_statistic(true, generated)),
        (Wasserstein1D(), wasserstein_1d(true, generated)),
        (Wasserstein2Squared1D(reduction="mean"), wasserstein_1d(true, generated, p=2) ** 2),
    ]
    for metric, expected in cases:
        metric.update(torch.from_numpy(true[:150]), real=True)
        metric.update(generated[:100], real=False)
        metric.update(true[150:], real=True)
        metric.update(generated[100:], real=False)
        assert metric.per_feature().numpy() == pytest.approx(expected.numpy(), rel=1e-12)
        assert metric.compute() == pytest.approx(reduce_features(expected, metric.reduction), rel=1e-12)
        metric.reset()
        with pytest.raises(AebenchError, match="both real and generated"):
            metric.compute()


def test_skip_constant_leaves_a_constant_true_feature_out_of_the_sum_only(seed=0):
    """The detector's MET pz is 0 in every true event: with `skip_constant` a generator that puts small values there
    is not charged log(1/ε) by the binned KL (nor anything by the others), and the feature's value stays in
    `per_feature`. Real batches seen in parts (also from several processes: a "cat" state) decide together."""
    true, generated, edges = samples(seed)
    true, generated = np.array(true), np.array(generated)
    true[:, 1] = 0.0  # constant in the true sample
    generated[:, 1] = np.random.default_rng(seed).normal(0, 0.01, len(generated))  # straddles the bin edge at 0
    edges = bin_edges([(-1.0, 1.0)] * true.shape[1], 20)
    for make in (lambda **kw: BinnedKLDivergence(edges, **kw), lambda **kw: ReducedChi2Otus(edges, **kw),
                 KolmogorovSmirnov, Wasserstein2Squared1D):  # fmt: skip
        kept, skipped = make(), make(skip_constant=True)
        for metric in (kept, skipped):
            metric.update(true[:150], real=True)
            metric.update(true[150:], real=True)
            metric.update(generated, real=False)
        values = kept.per_feature()
        assert torch.equal(skipped.per_feature(), values)
        assert skipped.varying().tolist() == [j != 1 for j in range(true.shape[1])]
        others = torch.cat([values[:1], values[2:]])
        assert skipped.compute().item() == reduce_features(others, "sum")
        assert kept.compute().item() == reduce_features(values, "sum") >= skipped.compute().item()
    kl = BinnedKLDivergence(edges)
    kl.update(true, real=True)
    kl.update(generated, real=False)
    # What the sum would pay without skip_constant: about log 2 with half the values across the edge at 0, up to
    # log(1/ε) ≈ 23 when none lands in the true bin.
    assert kl.per_feature()[1] > 0.5
    varying_in_parts = KolmogorovSmirnov(skip_constant=True)  # constant within each part, not across them
    varying_in_parts.update(np.zeros((5, 1)), real=True)
    varying_in_parts.update(np.ones((5, 1)), real=True)
    varying_in_parts.update(np.ones((5, 1)), real=False)
    assert varying_in_parts.varying().tolist() == [True] and varying_in_parts.compute().item() == 0.5


def test_metric_registry_reduction_and_errors():
    for name in (
        "kl-binned",
        "chi2-turbosim",
        "chi2-otus",
        "ks",
        "wasserstein-1d",
        "wasserstein2sq-1d",
        "hamming-otsu",
    ):
        assert metrics.get(name).name == name and not metrics.get(name).higher_is_better
    values = torch.tensor([1.0, 2.0, 6.0], dtype=torch.float64)
    assert reduce_features(values, "sum") == 9.0 and reduce_features(values, "mean") == 3.0
    with pytest.raises(AebenchError, match="reduction"):
        KolmogorovSmirnov(reduction="max")
    with pytest.raises(AebenchError, match="out_of_range"):
        BinnedKLDivergence([0.0, 1.0], out_of_range="wrap")
    metric = KolmogorovSmirnov()
    metric.update(np.zeros((3, 2)), real=True)
    with pytest.raises(AebenchError, match="features"):
        metric.update(np.zeros((3, 5)), real=False)
    binned = BinnedKLDivergence([0.0, 0.5, 1.0])
    binned.update(np.zeros((3, 2)), real=True)
    with pytest.raises(AebenchError, match="features"):
        binned.update(np.zeros((3, 5)), real=False)
    with pytest.raises(AebenchError, match="NaN"):
        binned.update(torch.tensor([[float("nan"), 0.0]]), real=False)


# --- CDP: Otsu and Hamming ----------------------------------------------------------------------------------------


def cdp_like(seed: int, n: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Random binary templates and noisy, blurred, contrast-warped estimates of them."""
    rng = np.random.default_rng(seed)
    size = int(rng.integers(4, 48))
    templates = (rng.random((n, size, size)) < rng.uniform(0.2, 0.8)).astype(float)
    blurred = (templates + np.roll(templates, 1, axis=1) + np.roll(templates, 1, axis=2)) / 3
    estimates = blurred + rng.normal(0, rng.uniform(0.05, 0.6), templates.shape)
    return templates, np.exp(rng.uniform(-2, 2)) * estimates ** rng.choice([1, 3]) + rng.normal()


@pytest.mark.parametrize("seed", range(8))
def test_otsu_threshold_equals_skimage(seed):
    skimage_filters = pytest.importorskip("skimage.filters")
    _, estimates = cdp_like(seed)
    rng = np.random.default_rng(seed)
    images = np.concatenate([estimates, rng.random(estimates.shape) ** 4, rng.integers(0, 4, estimates.shape) * 1.0])
    for batch in (images, minmax_normalise(images)):
        ours = otsu_threshold(batch)
        assert [skimage_filters.threshold_otsu(image, nbins=256) for image in batch] == list(ours)


@pytest.mark.parametrize("seed", range(8))
def test_hamming_equals_the_skimage_reference(seed):
    skimage_filters = pytest.importorskip("skimage.filters")
    templates, estimates = cdp_like(seed)
    expected = []
    for t, e in zip(templates, estimates, strict=True):
        levels = np.rint((e - e.min()) / (e.max() - e.min()) * 255)  # min-max normalised, 8-bit
        expected.append(np.mean((levels > skimage_filters.threshold_otsu(levels)) != (t == 1)))
    ours = hamming_per_image(torch.from_numpy(estimates)[:, None], templates[:, None])  # (N, 1, H, W) accepted
    assert list(ours) == expected
    metric = HammingOtsu()
    metric.update(estimates[:2], templates[:2])
    metric.update(estimates[2:], templates[2:])
    assert metric.compute() == pytest.approx(np.mean(expected), rel=1e-12)


def test_a_tight_cluster_is_not_split_by_the_threshold():
    # Ink values spread over less than one of 256 histogram bins, paper at 1: on float values skimage's Otsu
    # threshold is the centre of that bin and flips about half the ink pixels; 8-bit levels keep them together.
    rng = np.random.default_rng(0)
    templates = (rng.random((4, 32, 32)) < 0.5).astype(float)
    estimates = np.where(templates == 1, 1.0, rng.uniform(0.0, 1 / 256, templates.shape))
    assert HammingOtsu()(estimates, templates) == 0.0
    normalised = minmax_normalise(estimates)
    float_binary = normalised > otsu_threshold(normalised)[:, None, None]
    assert np.mean(float_binary != (templates == 1)) > 0.1


def test_hamming_edge_cases():
    templates = (np.random.default_rng(3).random((4, 9, 9)) < 0.4).astype(float)
    assert HammingOtsu()(templates * 0.8 + 0.1, templates) == 0.0  # a perfect (rescaled) estimate
    assert HammingOtsu()(1 - templates, templates) == 1.0  # inverted polarity: every pixel wrong
    # A constant estimate has no Otsu threshold: it is binarised to all 0, so the distance is the fraction of 1s.
    constant = np.full((4, 1, 9, 9), 0.3)
    assert not binarise_otsu(constant).any() and not minmax_normalise(constant).any()
    assert hamming_per_image(constant, templates) == pytest.approx(templates.mean(axis=(1, 2)))
    with pytest.raises(AebenchError, match="binary"):
        hamming_per_image(templates, templates * 2)
    with pytest.raises(AebenchError, match="shape"):
        hamming_per_image(templates[:, :8], templates)
    with pytest.raises(AebenchError, match="grayscale"):
        hamming_per_image(np.zeros((2, 3, 4, 4)), np.zeros((2, 3, 4, 4)))
    with pytest.raises(AebenchError, match="NaN"):
        hamming_per_image(np.where(templates == 1, np.nan, 0.0), templates)
    with pytest.raises(AebenchError, match="no images"):
        HammingOtsu().compute()
