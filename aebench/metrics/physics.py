"""Per-feature 1-D distribution metrics of the HEP task: binned KL, KS, 1-D Wasserstein and two reduced χ².

Every helper takes a true sample and a generated sample of shape (N, D) (or (N,) for one feature), works in
float64 and returns one value per feature, shape (D,). `reduce_features` turns those into the per-space number.

Histograms (KL, χ²) use explicit bin edges per feature, `bin_edges(ranges, n_bins=20)` for the paper's fixed
ranges. Bin i holds e_i ≤ x < e_{i+1}; the last bin also holds x = e_B (numpy's convention, so counts equal
`np.histogram` on the same edges). Values outside [e_0, e_B] are, by `out_of_range`:
- "clip" (default): counted in the first or last bin, so every sample counts and a generator cannot hide mass
  outside the plotted range from a normalised metric;
- "drop": left out, as `np.histogram(..., range=...)` does (the Turbo-Sim authors' plotting/χ² code).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from aebench.errors import AebenchError
from aebench.metrics.base import Metric, check_finite
from aebench.registry import metrics

OUT_OF_RANGE = ("clip", "drop")
REDUCTIONS = ("sum", "mean")


def _float64(x: Tensor | np.ndarray) -> Tensor:
    return (x.detach() if isinstance(x, Tensor) else torch.as_tensor(np.asarray(x))).to("cpu", torch.float64)


def as_features(values: Tensor | np.ndarray, what: str) -> Tensor:
    """(N, D) or (N,) samples → (N, D) float64 on the CPU; NaN or empty input is an error."""
    x = _float64(values)
    if x.dim() == 1:
        x = x[:, None]
    if x.dim() != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise AebenchError(f"{what}: expected samples of shape (N ≥ 1, D) or (N,), got {tuple(x.shape)}")
    return check_finite(x, what)


def bin_edges(ranges: Sequence[tuple[float, float]], n_bins: int = 20) -> Tensor:
    """(D, n_bins + 1) equal-width edges, one row per (low, high); the same edges `np.histogram` makes from a range."""
    if n_bins < 1 or any(not low < high for low, high in ranges):
        raise AebenchError(f"bin_edges: need n_bins ≥ 1 and low < high for every range, got {n_bins}, {ranges}")
    return torch.from_numpy(np.stack([np.linspace(low, high, n_bins + 1) for low, high in ranges]))


def as_edges(edges: Tensor | np.ndarray, n_features: int, what: str) -> Tensor:
    """Edges (D, B + 1), or (B + 1,) shared by all features → (D, B + 1) float64, strictly increasing."""
    e = _float64(edges)
    if e.dim() == 1:
        e = e.expand(n_features, -1)
    if e.dim() != 2 or e.shape[0] != n_features or e.shape[1] < 2:
        raise AebenchError(f"{what}: expected bin edges (D={n_features}, B + 1 ≥ 2) or (B + 1,), got {tuple(e.shape)}")
    if not torch.isfinite(e).all() or not (e.diff(dim=1) > 0).all():
        raise AebenchError(f"{what}: bin edges must be finite and strictly increasing")
    return e.contiguous()


def histogram_counts(values: Tensor | np.ndarray, edges: Tensor | np.ndarray, out_of_range: str = "clip") -> Tensor:
    """Counts (D, B) of each feature in its bins; see the module docstring for the bin and out-of-range rules."""
    if out_of_range not in OUT_OF_RANGE:
        raise AebenchError(f"out_of_range must be one of {OUT_OF_RANGE}, got {out_of_range!r}")
    x = as_features(values, "histogram").T.contiguous()  # (D, N)
    e = as_edges(edges, x.shape[0], "histogram")
    n_bins = e.shape[1] - 1
    # searchsorted(right) - 1 is the bin with e_i ≤ x < e_{i+1}; the clamp closes the last bin at e_B and, for
    # "clip", folds values outside the range into the edge bins.
    index = (torch.searchsorted(e, x, right=True) - 1).clamp(0, n_bins - 1)
    weight = torch.ones_like(x)
    if out_of_range == "drop":
        weight = ((x >= e[:, :1]) & (x <= e[:, -1:])).to(torch.float64)
    return torch.zeros(x.shape[0], n_bins, dtype=torch.float64).scatter_add_(1, index, weight)


def _totals(counts: Tensor, what: str) -> Tensor:
    total = counts.sum(dim=1, keepdim=True)
    if (total == 0).any():
        empty = torch.nonzero(total[:, 0] == 0).flatten().tolist()
        raise AebenchError(f"{what}: a histogram has no entries inside the bin range (features {empty})")
    return total


def kl_from_counts(true_counts: Tensor, generated_counts: Tensor, eps: float = 1e-10) -> Tensor:
    """KL(P ‖ Q) in nats per feature, P from the true counts, Q from the generated counts, both (D, B).

    P and Q are normalised to sum to 1, then ε is added to every bin of both and they are renormalised:
    P' = (P + ε) / (1 + Bε). KL = Σ_i P'_i log(P'_i / Q'_i), with 0·log 0 = 0. Why ε in both: a bin the truth fills
    but the generator misses would make KL infinite and swamp a sum over features; with ε it costs about
    P_i (log P_i + log 1/ε) instead, while bins empty in the truth contribute ≈ 0. ε is in probability units, so the
    value does not depend on the sample size. ε = 0 gives the exact KL (possibly +inf).
    Equals `scipy.stats.entropy(P + ε, Q + ε)` per feature.
    """
    if eps < 0:
        raise AebenchError(f"kl: eps must be ≥ 0, got {eps}")
    true_counts, generated_counts = _float64(true_counts), _float64(generated_counts)
    n_bins = true_counts.shape[1]
    p = (true_counts / _totals(true_counts, "kl") + eps) / (1 + n_bins * eps)
    q = (generated_counts / _totals(generated_counts, "kl") + eps) / (1 + n_bins * eps)
    return torch.where(p > 0, p * torch.log(p / q), 0.0).sum(dim=1)


def chi2_turbosim_from_counts(true_counts: Tensor, generated_counts: Tensor) -> Tensor:
    """Reduced χ² of the Turbo-Sim authors' code, per feature, from (D, B) counts n (true) and m (generated).

    χ²/ndf = 1/(B − 1) · Σ_{i: n_i > 0} (s·m_i − n_i)² / n_i, with s = N/M the ratio of the histogram totals.
    Read from the authors' public code (quetant/turbo-sim-supplementary, utils/metrics.py): Pearson's χ² with
    the true counts as expectation, raw counts of equal-size samples (s = 1 there), ndf = number of bins − 1.
    Inferred: the scaling s for unequal sample sizes, and leaving out bins with n_i = 0 (their code divides by
    zero there, giving inf or NaN); such bins are therefore not penalised — the OTUS variant is.
    """
    true_counts, generated_counts = _float64(true_counts), _float64(generated_counts)
    n_bins = true_counts.shape[1]
    if n_bins < 2:
        raise AebenchError("chi2-turbosim: needs at least 2 bins (ndf = bins − 1)")
    scale = _totals(true_counts, "chi2-turbosim") / _totals(generated_counts, "chi2-turbosim")
    n, m = true_counts, generated_counts
    terms = torch.where(n > 0, (scale * m - n) ** 2 / torch.where(n > 0, n, 1.0), 0.0)
    return terms.sum(dim=1) / (n_bins - 1)


def chi2_otus_from_counts(true_counts: Tensor, generated_counts: Tensor, min_count: float = 5.0) -> Tensor:
    """Reduced χ² of OTUS (`func_utils.py: ReducedChiSq`), per feature, from (D, B) counts n (true), m (generated).

    OTUS asserts that every bin holds at least 5 counts in both histograms and computes
    χ²/ndf = Σ (n_i − m_i)² / (n_i + m_i) / (k − 1) over its k bins (Poisson errors on both, equal sample sizes).
    Here the bins are those with n_i ≥ `min_count` and m_i ≥ `min_count` (the others are left out instead of
    failing), the generated histogram is scaled to the true total (s = N/M; s = 1 for equal sizes, as theirs) with
    variance n_i + s²·m_i, and ndf = k − 1; 0 when k ≤ 1 (no shape to compare).
    """
    true_counts, generated_counts = _float64(true_counts), _float64(generated_counts)
    scale = _totals(true_counts, "chi2-otus") / _totals(generated_counts, "chi2-otus")
    n, m = true_counts, generated_counts
    used = (n >= min_count) & (m >= min_count)
    variance = torch.where(used, n + scale**2 * m, 1.0)
    terms = torch.where(used, (n - scale * m) ** 2 / variance, 0.0)
    ndf = used.sum(dim=1) - 1
    return torch.where(ndf > 0, terms.sum(dim=1) / ndf.clamp(min=1), 0.0)


def truth_range(true: Tensor | np.ndarray, n_bins: int = 20) -> Tensor:
    """(D, 2) the Turbo-Sim authors' χ² range per feature (`utils/plots.py: get_min_max`, min_count = −1):
    histogram the truth in `n_bins` equal bins over its full span; the range runs from the left edge of the first
    bin holding more than N // 200 events to the left edge of the last such bin."""
    x = as_features(true, "chi2-truth-range")
    low, high = x.min(dim=0).values, x.max(dim=0).values
    ranges = []
    for j in range(x.shape[1]):
        counts, edges = np.histogram(x[:, j].numpy(), bins=n_bins)  # numpy's own edges, as theirs
        left = edges[:-1][counts > len(x) // 200]
        ranges.append((left.min(), left.max()) if len(left) else (float(low[j]), float(high[j])))
    return torch.tensor(ranges, dtype=torch.float64)


def chi2_truth_range(true: Tensor | np.ndarray, generated: Tensor | np.ndarray, n_bins: int = 20) -> Tensor:
    """(D,) reduced χ² of the Turbo-Sim authors' `_compute_chi2` (utils/metrics.py), per feature.

    Over `truth_range`, `n_bins` new equal bins; values outside are dropped (`np.histogram(..., range=...)`) from
    both samples. χ²/ndf = Σ_{n_i > 0} (s·m_i − n_i)² / n_i / (n_bins − 1), n the true and m the generated counts,
    s = N/M the ratio of the two *sample* sizes (1 for theirs, equal sizes), so generated mass outside the range is
    missing from m and counts against the model. Bins with n_i = 0 are left out (their code divides by zero there);
    a degenerate range (a constant feature) gives 0.
    """
    a, b = as_features(true, "chi2-truth-range"), as_features(generated, "chi2-truth-range")
    _same_features(a.T, b.T, "chi2-truth-range")
    if n_bins < 2:
        raise AebenchError("chi2-truth-range: needs at least 2 bins (ndf = bins − 1)")
    scale = len(a) / len(b)
    values = []
    for j, (low, high) in enumerate(truth_range(a, n_bins).tolist()):
        if not high > low:
            values.append(0.0)
            continue
        n, _ = np.histogram(a[:, j].numpy(), bins=n_bins, range=(low, high))
        m, _ = np.histogram(b[:, j].numpy(), bins=n_bins, range=(low, high))
        filled = n > 0
        values.append(float(((scale * m[filled] - n[filled]) ** 2 / n[filled]).sum() / (n_bins - 1)))
    return torch.tensor(values, dtype=torch.float64)


def binned_kl(
    true: Tensor | np.ndarray,
    generated: Tensor | np.ndarray,
    edges: Tensor | np.ndarray,
    out_of_range: str = "clip",
    eps: float = 1e-10,
) -> Tensor:
    """(D,) KL(P_true ‖ Q_generated) in nats over the given bins; see `kl_from_counts`."""
    return kl_from_counts(
        histogram_counts(true, edges, out_of_range), histogram_counts(generated, edges, out_of_range), eps
    )


def chi2_turbosim(
    true: Tensor | np.ndarray, generated: Tensor | np.ndarray, edges: Tensor | np.ndarray, out_of_range: str = "clip"
) -> Tensor:
    """(D,) reduced χ², Turbo-Sim variant; see `chi2_turbosim_from_counts`."""
    return chi2_turbosim_from_counts(
        histogram_counts(true, edges, out_of_range), histogram_counts(generated, edges, out_of_range)
    )


def chi2_otus(
    true: Tensor | np.ndarray, generated: Tensor | np.ndarray, edges: Tensor | np.ndarray, out_of_range: str = "clip"
) -> Tensor:
    """(D,) reduced χ², OTUS variant; see `chi2_otus_from_counts`."""
    return chi2_otus_from_counts(
        histogram_counts(true, edges, out_of_range), histogram_counts(generated, edges, out_of_range)
    )


def ks_statistic(true: Tensor | np.ndarray, generated: Tensor | np.ndarray) -> Tensor:
    """(D,) two-sample Kolmogorov–Smirnov statistic sup_x |F_true(x) − F_generated(x)| (= scipy's `ks_2samp`)."""
    a = as_features(true, "ks").T.contiguous().sort(dim=1).values  # (D, n)
    b = as_features(generated, "ks").T.contiguous().sort(dim=1).values  # (D, m)
    _same_features(a, b, "ks")
    pooled = torch.cat([a, b], dim=1)  # the sup is reached at a sample point
    cdf_a = torch.searchsorted(a, pooled, right=True).to(torch.float64) / a.shape[1]
    cdf_b = torch.searchsorted(b, pooled, right=True).to(torch.float64) / b.shape[1]
    return (cdf_a - cdf_b).abs().amax(dim=1)


def wasserstein_1d(true: Tensor | np.ndarray, generated: Tensor | np.ndarray, p: int = 1) -> Tensor:
    """(D,) Wasserstein-p distance W_p = (∫_0^1 |F⁻¹(t) − G⁻¹(t)|^p dt)^(1/p) of the empirical distributions.

    p = 1 equals `scipy.stats.wasserstein_distance`. The quantile functions are step functions that change only at
    levels i/n and j/m, so the integral is an exact finite sum over their merged levels (integers over lcm(n, m)).
    """
    if p < 1:
        raise AebenchError(f"wasserstein: p must be ≥ 1, got {p}")
    a = as_features(true, "wasserstein").T.contiguous().sort(dim=1).values  # (D, n)
    b = as_features(generated, "wasserstein").T.contiguous().sort(dim=1).values  # (D, m)
    _same_features(a, b, "wasserstein")
    n, m = a.shape[1], b.shape[1]
    common = math.lcm(n, m)
    step_a, step_b = common // n, common // m
    levels = torch.cat([torch.arange(1, n + 1) * step_a, torch.arange(1, m + 1) * step_b]).unique()  # sorted
    widths = torch.diff(levels, prepend=torch.zeros(1, dtype=levels.dtype)).to(torch.float64) / common
    # On (previous level, level] the quantile of a is a[ceil(level / step_a) - 1].
    index_a = (levels + step_a - 1) // step_a - 1
    index_b = (levels + step_b - 1) // step_b - 1
    cost = (a[:, index_a] - b[:, index_b]).abs() ** p  # (D, K)
    return (cost * widths).sum(dim=1) ** (1.0 / p)


def _same_features(a: Tensor, b: Tensor, what: str) -> None:
    if a.shape[0] != b.shape[0]:
        raise AebenchError(f"{what}: the samples have {a.shape[0]} and {b.shape[0]} features")


def reduce_features(values: Tensor, reduction: str) -> float:
    """One number per space from per-feature values: "sum" (the paper's per-space KL, inferred) or "mean"."""
    if reduction == "sum":
        return float(values.sum())
    if reduction == "mean":
        return float(values.mean())
    raise AebenchError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


class _FeatureMetric(Metric):
    """Two samples of (N, D) features fed by `update(values, real=...)`; `compute` reduces the per-feature values.

    With `skip_constant`, the features that are constant in the real sample are left out of the reduction (their
    values stay in `per_feature`): such a feature has no distribution to compare, and a binned KL would give it
    log(1/ε) as soon as generated values straddle a bin edge at the constant."""

    _feature_axis: ClassVar[int] = 1  # of what `_keep` returns: (N, D) samples here, (D, B) counts when binned

    def __init__(self, reduction: str = "sum", skip_constant: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if reduction not in REDUCTIONS:
            raise AebenchError(f"{self.name}: reduction must be one of {REDUCTIONS}, got {reduction!r}")
        self.reduction, self.skip_constant = reduction, skip_constant
        self.add_state("real_parts", [], dist_reduce_fx="cat")  # gathered across processes before `compute`
        self.add_state("fake_parts", [], dist_reduce_fx="cat")
        self.add_state("real_ranges", [], dist_reduce_fx="cat")  # (2, D) min and max of each real batch

    def _keep(self, values: Tensor) -> Tensor:
        """What a batch leaves in the state: the samples themselves, or their histogram."""
        return values

    def _per_feature(self, real: Tensor, fake: Tensor) -> Tensor:
        """(D,) values from the concatenated parts of each sample."""
        raise NotImplementedError

    def update(self, values: Tensor | np.ndarray, real: bool) -> None:
        x = as_features(values, self.name)
        seen = (self.real_parts or self.fake_parts or [None])[0]
        if seen is not None and seen.shape[self._feature_axis] != x.shape[1]:
            raise AebenchError(
                f"{self.name}: this batch has {x.shape[1]} features, earlier ones had {seen.shape[self._feature_axis]}"
            )
        (self.real_parts if real else self.fake_parts).append(self._keep(x))
        if real:
            self.real_ranges.append(torch.stack([x.amin(dim=0), x.amax(dim=0)]))

    def per_feature(self) -> Tensor:
        """(D,) values of the accumulated samples."""
        if not len(self.real_parts) or not len(self.fake_parts):
            raise AebenchError(f"{self.name}: both real and generated samples are needed")
        return self._per_feature(self.gathered("real_parts"), self.gathered("fake_parts"))

    def varying(self) -> Tensor:
        """(D,) True for the features whose real values are not all equal."""
        if not len(self.real_ranges):
            raise AebenchError(f"{self.name}: no real samples were given")
        ranges = self.gathered("real_ranges")
        ranges = ranges.view(-1, 2, ranges.shape[-1])
        return ranges[:, 1].amax(dim=0) > ranges[:, 0].amin(dim=0)

    def compute(self) -> Tensor:
        values = self.per_feature()
        if self.skip_constant:
            values = values[self.varying()]
        return torch.tensor(reduce_features(values, self.reduction), dtype=torch.float64)


class _BinnedMetric(_FeatureMetric):
    """Keeps only each batch's histogram (D, B), so memory does not grow with the sample."""

    _feature_axis = 0

    def __init__(
        self,
        edges: Tensor | np.ndarray,
        out_of_range: str = "clip",
        reduction: str = "sum",
        skip_constant: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(reduction, skip_constant, **kwargs)
        if out_of_range not in OUT_OF_RANGE:
            raise AebenchError(f"{self.name}: out_of_range must be one of {OUT_OF_RANGE}, got {out_of_range!r}")
        self.edges = _float64(edges)
        self.out_of_range = out_of_range

    def _keep(self, values: Tensor) -> Tensor:
        counts = histogram_counts(values, self.edges, self.out_of_range)
        self._n_features = len(counts)
        return counts

    def _per_feature(self, real: Tensor, fake: Tensor) -> Tensor:
        # The parts are (D, B) histograms, one under another (also when gathered from several processes).
        real, fake = (x.view(-1, self._n_features, x.shape[1]).sum(dim=0) for x in (real, fake))
        return self._from_counts(real, fake)

    def _from_counts(self, true_counts: Tensor, generated_counts: Tensor) -> Tensor:
        raise NotImplementedError


@metrics.register("kl-binned")
class BinnedKLDivergence(_BinnedMetric):
    """KL(P_true ‖ Q_generated) per feature over fixed bins, summed (or averaged) over the space's features."""

    name = "kl-binned"
    higher_is_better = False
    description = "binned KL(true ‖ generated) in nats per feature (ε = 1e-10 in both); sum over features"

    def __init__(
        self,
        edges: Tensor | np.ndarray,
        out_of_range: str = "clip",
        reduction: str = "sum",
        eps: float = 1e-10,
        skip_constant: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(edges, out_of_range, reduction, skip_constant, **kwargs)
        if eps < 0:
            raise AebenchError(f"{self.name}: eps must be ≥ 0, got {eps}")
        self.eps = eps

    def _from_counts(self, true_counts: Tensor, generated_counts: Tensor) -> Tensor:
        return kl_from_counts(true_counts, generated_counts, self.eps)


@metrics.register("chi2-turbosim")
class ReducedChi2TurboSim(_BinnedMetric):
    name = "chi2-turbosim"
    higher_is_better = False
    description = "reduced χ² (Turbo-Sim code): Σ_{n>0} (s·m − n)²/n / (bins − 1) per feature; sum over features"

    def _from_counts(self, true_counts: Tensor, generated_counts: Tensor) -> Tensor:
        return chi2_turbosim_from_counts(true_counts, generated_counts)


@metrics.register("chi2-truth-range")
class ReducedChi2TruthRange(_FeatureMetric):
    name = "chi2-truth-range"
    higher_is_better = False
    description = "reduced χ² of the Turbo-Sim authors' _compute_chi2: 20 bins over the truth's own range; sum"

    def __init__(self, n_bins: int = 20, reduction: str = "sum", skip_constant: bool = False, **kwargs: Any) -> None:
        super().__init__(reduction, skip_constant, **kwargs)
        self.n_bins = n_bins

    def _per_feature(self, real: Tensor, fake: Tensor) -> Tensor:
        return chi2_truth_range(real, fake, self.n_bins)


@metrics.register("chi2-otus")
class ReducedChi2Otus(_BinnedMetric):
    name = "chi2-otus"
    higher_is_better = False
    description = "reduced χ² of OTUS: Σ (n − s·m)²/(n + s²m) / (k − 1) over the k bins with ≥ 5 counts in both; sum"

    def _from_counts(self, true_counts: Tensor, generated_counts: Tensor) -> Tensor:
        return chi2_otus_from_counts(true_counts, generated_counts)


@metrics.register("ks")
class KolmogorovSmirnov(_FeatureMetric):
    name = "ks"
    higher_is_better = False
    description = "two-sample Kolmogorov–Smirnov statistic per feature (scipy ks_2samp); sum over features"

    def _per_feature(self, real: Tensor, fake: Tensor) -> Tensor:
        return ks_statistic(real, fake)


@metrics.register("wasserstein-1d")
class Wasserstein1D(_FeatureMetric):
    name = "wasserstein-1d"
    higher_is_better = False
    description = "1-D Wasserstein-1 distance per feature (scipy wasserstein_distance); sum over features"

    def _per_feature(self, real: Tensor, fake: Tensor) -> Tensor:
        return wasserstein_1d(real, fake, p=1)


@metrics.register("wasserstein2sq-1d")
class Wasserstein2Squared1D(_FeatureMetric):
    name = "wasserstein2sq-1d"
    higher_is_better = False
    description = "squared 1-D Wasserstein-2 distance W₂² per feature (as OTUS reports); sum over features"

    def _per_feature(self, real: Tensor, fake: Tensor) -> Tensor:
        return wasserstein_1d(real, fake, p=2) ** 2
