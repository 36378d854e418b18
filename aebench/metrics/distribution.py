"""Distribution metrics on (N, D) features of real and generated samples, all in float64.

FID (Fréchet distance of Gaussian fits), KID (unbiased polynomial-kernel MMD² over random subsets), precision and
recall (Kynkäänniemi et al. 2019) with density and coverage (Naeem et al. 2020), the sliced Wasserstein distance
SW₂, and an unbiased Gaussian-kernel MMD². Each is a functional helper on features plus a thin metric class that
gathers the features of a named extractor; a value is only comparable with values from the same extractor.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import scipy.linalg
import torch
from scipy.linalg.blas import dtrmm
from torch import Tensor

from aebench.errors import AebenchError
from aebench.features import FeatureExtractor
from aebench.metrics.base import Metric, check_finite
from aebench.registry import metrics

BLOCK_ENTRIES = 2**22  # kernel and distance matrices are built in row blocks of at most this many entries (32 MB)


def gaussian_stats(features: Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (ddof 1) of (N, D) features, in float64."""
    f = np.asarray(features.detach().cpu() if isinstance(features, Tensor) else features, dtype=np.float64)
    if f.ndim != 2 or len(f) < 2:
        raise AebenchError(f"fid: expected (N ≥ 2, D) features, got shape {f.shape}")
    return f.mean(axis=0), np.cov(f, rowvar=False, ddof=1).reshape(f.shape[1], f.shape[1])


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """‖μ1 − μ2‖² + tr(Σ1 + Σ2 − 2 (Σ1 Σ2)^½), in float64.

    With any factor Σ1 = R Rᵀ, Σ1 Σ2 is similar to the symmetric PSD matrix Rᵀ Σ2 R, so tr (Σ1 Σ2)^½ is the sum of
    the square roots of its eigenvalues: a Cholesky factor and one symmetric eigenvalue solve, no general `sqrtm`.
    A singular Σ1 (fewer samples than dimensions, constant features) has no Cholesky factor; its symmetric square
    root (an eigendecomposition) serves instead.
    """
    mu1, cov1, mu2, cov2 = (np.asarray(a, dtype=np.float64) for a in (mu1, cov1, mu2, cov2))
    try:
        factor = scipy.linalg.cholesky(cov1, lower=True)
        # Lᵀ Σ2 L as two triangular products (BLAS dtrmm): half the flops of general matrix products.
        middle = dtrmm(1.0, factor, dtrmm(1.0, factor, cov2, side=1, lower=1), lower=1, trans_a=1)
    except np.linalg.LinAlgError:
        values, vectors = scipy.linalg.eigh(cov1)
        root = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
        middle = root @ cov2 @ root
    eigenvalues = scipy.linalg.eigh((middle + middle.T) / 2, eigvals_only=True)
    trace_sqrt = np.sqrt(np.clip(eigenvalues, 0, None)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2 * trace_sqrt)


def _features(x: Tensor | np.ndarray, what: str, min_rows: int = 2) -> Tensor:
    """(N, D) float64 features, checked."""
    x = x.detach().to(torch.float64) if isinstance(x, Tensor) else torch.from_numpy(np.array(x, dtype=np.float64))
    if x.dim() != 2 or len(x) < min_rows or x.shape[1] == 0:
        raise AebenchError(f"{what}: expected (N ≥ {min_rows}, D) features, got shape {tuple(x.shape)}")
    return check_finite(x, what)


def _pair(real: Tensor | np.ndarray, fake: Tensor | np.ndarray, what: str, min_rows: int = 2) -> tuple[Tensor, Tensor]:
    x, y = _features(real, f"{what} real", min_rows), _features(fake, f"{what} generated", min_rows)
    if x.shape[1] != y.shape[1]:
        raise AebenchError(f"{what}: feature sizes differ: {x.shape[1]} (real) and {y.shape[1]} (generated)")
    return x, y.to(x.device)


def _blocks(x: Tensor, columns: int) -> list[tuple[int, Tensor]]:
    """Row blocks of x (with their first row index) such that a block × `columns` matrix stays bounded."""
    rows = max(1, BLOCK_ENTRIES // max(columns, 1))
    return [(start, x[start : start + rows]) for start in range(0, len(x), rows)]


def _kernel_sum(x: Tensor, y: Tensor, kernel: Callable[[Tensor, Tensor], Tensor], skip_diagonal: bool) -> Tensor:
    """Σ_ij k(x_i, y_j), leaving out i = j when x and y are the same sample."""
    total = x.new_zeros(())
    for start, block in _blocks(x, len(y)):
        k = kernel(block, y)  # (rows, M)
        if skip_diagonal:
            k.diagonal(offset=start).zero_()  # entries (i, start + i)
        total += k.sum()
    return total


def _unbiased_mmd2(x: Tensor, y: Tensor, kernel: Callable[[Tensor, Tensor], Tensor]) -> float:
    """Σ_{i≠j} k(x_i, x_j)/(n(n−1)) + Σ_{i≠j} k(y_i, y_j)/(m(m−1)) − 2 Σ_ij k(x_i, y_j)/(nm): may be negative."""
    n, m = len(x), len(y)
    xx = _kernel_sum(x, x, kernel, skip_diagonal=True) / (n * (n - 1))
    yy = _kernel_sum(y, y, kernel, skip_diagonal=True) / (m * (m - 1))
    xy = _kernel_sum(x, y, kernel, skip_diagonal=False) / (n * m)
    return float(xx + yy - 2 * xy)


def cubic_kernel(x: Tensor, y: Tensor) -> Tensor:
    """KID's kernel k(x, y) = (x·y / D + 1)³: (N, D), (M, D) → (N, M)."""
    return (x @ y.T / x.shape[1] + 1) ** 3


def kernel_inception_distance(
    real: Tensor | np.ndarray,
    fake: Tensor | np.ndarray,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
    scale: float = 1.0,
) -> tuple[float, float]:
    """KID (Bińkowski et al. 2018): mean and standard deviation (ddof 0) of the unbiased MMD² with the cubic kernel
    over `subsets` pairs of random subsets of `subset_size` real and generated samples, drawn without replacement
    within a subset (as torchmetrics does). Subset i draws `randperm(n_real)` then `randperm(n_generated)` from a
    `torch.Generator` seeded with `seed`.

    The kernel (x·y/D + 1)³ assumes features of order one, as Inception's are; features of another scale are first
    divided by `scale` (e.g. a trained extractor's RMS feature on its training data), else KID is noise-dominated.
    When `subset_size` equals both sample counts every subset is the whole set: KID is computed once (std 0).
    """
    if not (math.isfinite(scale) and scale > 0):
        raise AebenchError(f"kid: scale must be a positive number, got {scale}")
    x, y = _pair(real, fake, "kid")
    x, y = x / scale, y / scale
    if subsets < 1 or not 2 <= subset_size <= min(len(x), len(y)):
        raise AebenchError(
            f"kid: need subsets ≥ 1 and 2 ≤ subset_size ≤ min(real, generated) = {min(len(x), len(y))}, "
            f"got subsets={subsets}, subset_size={subset_size}"
        )
    if subset_size == len(x) == len(y):  # every subset would be the whole of both sets (MMD² ignores the order)
        return _unbiased_mmd2(x, y, cubic_kernel), 0.0
    generator = torch.Generator().manual_seed(seed)
    values = []
    for _ in range(subsets):
        real_rows = torch.randperm(len(x), generator=generator)[:subset_size].to(x.device)
        fake_rows = torch.randperm(len(y), generator=generator)[:subset_size].to(x.device)
        values.append(_unbiased_mmd2(x[real_rows], y[fake_rows], cubic_kernel))
    return float(np.mean(values)), float(np.std(values))


def rbf_mmd2(x: Tensor | np.ndarray, y: Tensor | np.ndarray, bandwidths: float | Sequence[float]) -> float:
    """Unbiased MMD² with k(a, b) = Σ_σ exp(−‖a − b‖² / (2σ²)), the sum over the given bandwidths σ."""
    x, y = _pair(x, y, "mmd")
    sigmas = [float(bandwidths)] if isinstance(bandwidths, (int, float)) else [float(s) for s in bandwidths]
    if not sigmas or not all(math.isfinite(s) and s > 0 for s in sigmas):
        raise AebenchError(f"mmd: bandwidths must be positive numbers, got {bandwidths!r}")
    center = x.mean(dim=0)  # distances do not change; fewer digits cancel in the matrix-product form of cdist

    def kernel(a: Tensor, b: Tensor) -> Tensor:
        squared = torch.cdist(a, b) ** 2
        return sum(torch.exp(-squared / (2 * s * s)) for s in sigmas)

    return _unbiased_mmd2(x - center, y - center, kernel)


def _kth_neighbour_distance(x: Tensor, k: int) -> Tensor:
    """(N,) distance from each row of x to its k-th nearest other row (the row itself is its own 0-th)."""
    return torch.cat([torch.cdist(b, x).topk(k + 1, dim=1, largest=False).values[:, -1] for _, b in _blocks(x, len(x))])


def precision_recall_density_coverage(
    real: Tensor | np.ndarray, fake: Tensor | np.ndarray, k_pr: int = 3, k_dc: int = 5
) -> dict[str, float]:
    """k-NN manifold metrics, Euclidean, with open balls B(x, r) = {z : ‖z − x‖ < r} as the `prdc` package uses.

    With r_k(a) the distance from a to its k-th nearest neighbour in its own set (real X, size N; generated Y,
    size M):
    precision = #{y : ∃x, ‖y − x‖ < r_kpr(x)} / M,  recall = #{x : ∃y, ‖x − y‖ < r_kpr(y)} / N (Kynkäänniemi),
    density = Σ_y #{x : ‖y − x‖ < r_kdc(x)} / (k_dc · M),  coverage = #{x : min_y ‖x − y‖ < r_kdc(x)} / N (Naeem).
    """
    x, y = _pair(real, fake, "prdc")
    if not (1 <= k_pr < min(len(x), len(y)) and 1 <= k_dc < len(x)):
        raise AebenchError(
            f"prdc: need 1 ≤ k_pr < min(real, generated) and 1 ≤ k_dc < real for {len(x)} real and "
            f"{len(y)} generated samples, got k_pr={k_pr}, k_dc={k_dc}"
        )
    center = x.mean(dim=0)
    x, y = x - center, y - center
    real_pr, real_dc = _kth_neighbour_distance(x, k_pr), _kth_neighbour_distance(x, k_dc)
    fake_pr = _kth_neighbour_distance(y, k_pr)
    in_real_pr = torch.zeros(len(y), dtype=torch.bool, device=x.device)  # y in some real k_pr-ball
    in_real_dc = torch.zeros(len(y), dtype=torch.long, device=x.device)  # number of real k_dc-balls holding y
    recalled, covered = [], []
    for start, block in _blocks(x, len(y)):
        d = torch.cdist(block, y)  # (rows, M)
        rows = slice(start, start + len(block))
        in_real_pr |= (d < real_pr[rows, None]).any(dim=0)
        in_real_dc += (d < real_dc[rows, None]).sum(dim=0)
        recalled.append((d < fake_pr[None, :]).any(dim=1))
        covered.append(d.min(dim=1).values < real_dc[rows])
    return {
        "precision": float(in_real_pr.double().mean()),
        "recall": float(torch.cat(recalled).double().mean()),
        "density": float(in_real_dc.sum()) / (k_dc * len(y)),
        "coverage": float(torch.cat(covered).double().mean()),
    }


def wasserstein_1d_rows(x: Tensor, y: Tensor, p: float = 2) -> Tensor:
    """Exact W_p between the empirical distributions of the rows of x (L, n) and y (L, m): → (L,).

    W_p^p = ∫₀¹ |F⁻¹(t) − G⁻¹(t)|^p dt with step quantile functions; with n = m this is the mean of
    |x_(i) − y_(i)|^p over the sorted samples, otherwise the integral runs over the merged steps at multiples of
    1/n and 1/m.
    """
    x, y = x.sort(dim=-1).values, y.sort(dim=-1).values
    n, m = x.shape[-1], y.shape[-1]
    # Step ends in units of 1/(n·m), exact in integers; on each step both quantile functions are constant.
    ends = torch.unique(torch.cat([torch.arange(1, n + 1) * m, torch.arange(1, m + 1) * n]))
    starts = torch.cat([ends.new_zeros(1), ends[:-1]])
    widths = ((ends - starts).to(torch.float64) / (n * m)).to(x.device)
    twice_mid = starts + ends
    i, j = (twice_mid // (2 * m)).to(x.device), (twice_mid // (2 * n)).to(x.device)  # sample index at the midpoint
    return (((x[..., i] - y[..., j]).abs() ** p) * widths).sum(dim=-1) ** (1 / p)


def random_directions(dim: int, count: int, seed: int) -> Tensor:
    """(count, dim) unit vectors, uniform on the sphere (normalised Gaussians), float64, from a seeded generator."""
    g = torch.randn(count, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return g / g.norm(dim=1, keepdim=True)


def sliced_wasserstein(x: Tensor | np.ndarray, y: Tensor | np.ndarray, projections: int = 1000, seed: int = 0) -> float:
    """SW₂ = (mean over random directions θ of W₂²(θ·x, θ·y))^½, the Monte Carlo estimate over `projections`
    directions from `random_directions(D, projections, seed)`; exact 1-D W₂ for any two sample sizes.
    """
    x, y = _pair(x, y, "sliced-wasserstein", min_rows=1)
    if projections < 1:
        raise AebenchError(f"sliced-wasserstein: projections must be ≥ 1, got {projections}")
    theta = random_directions(x.shape[1], projections, seed).to(x.device)  # (L, D)
    w2 = wasserstein_1d_rows(theta @ x.T, theta @ y.T, p=2)  # (L,)
    return float((w2**2).mean().sqrt())


class FeatureDistributionMetric(Metric):
    """State shared by the metrics below: (N, D) features of real and generated images, in float64.

    With an `extractor`, `update(images, real)` extracts the features of the images; without one (None), `update`
    takes the features themselves, so that features extracted once can feed several metrics.
    Under DDP each process's features are gathered (rank order) before `compute`.
    """

    def __init__(self, extractor: FeatureExtractor | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.extractor = extractor
        self.add_state("real_features", [], dist_reduce_fx="cat")
        self.add_state("fake_features", [], dist_reduce_fx="cat")

    def update(self, images: Tensor, real: bool) -> None:
        if self.extractor is None:
            features = _features(images, f"{self.name} {'real' if real else 'generated'}", min_rows=1)
        else:
            check_finite(images, self.name)
            with torch.no_grad():
                features = self.extractor.features(images).double()
        (self.real_features if real else self.fake_features).append(features.to(self.device))

    def features(self) -> tuple[Tensor, Tensor]:
        """(N, D) real and (M, D) generated features gathered so far (on this process, outside `compute`)."""
        if not len(self.real_features) or not len(self.fake_features):
            raise AebenchError(f"{self.name}: both real and generated images are needed")
        return self.gathered("real_features"), self.gathered("fake_features")


@metrics.register("fid")
class FrechetInceptionDistance(FeatureDistributionMetric):
    """Fréchet distance between real and generated images in the feature space of a named extractor."""

    name = "fid"
    higher_is_better = False
    description = "Fréchet distance of Gaussian fits to real and generated features (extractor named per value)"

    def compute(self) -> Tensor:
        real, fake = self.features()
        return _scalar(frechet_distance(*gaussian_stats(real), *gaussian_stats(fake)))


@metrics.register("kid")
class KernelInceptionDistance(FeatureDistributionMetric):
    """KID; `compute` gives (mean, standard deviation over the subsets) as torchmetrics' KID does.

    When `subset_size` equals both sample counts every subset is the whole set: the MMD² is computed once (std 0),
    not `subsets` times (see `kernel_inception_distance`).
    """

    name = "kid"
    higher_is_better = False
    description = "mean over random subsets of the unbiased MMD² with kernel (x·y/D + 1)³ (Bińkowski et al.)"

    def __init__(
        self,
        extractor: FeatureExtractor | None = None,
        subsets: int = 100,
        subset_size: int = 1000,
        seed: int = 0,
        scale: float = 1.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(extractor, **kwargs)
        self.subsets, self.subset_size, self.seed, self.scale = subsets, subset_size, seed, scale

    def compute(self) -> tuple[Tensor, Tensor]:
        real, fake = self.features()
        mean, std = kernel_inception_distance(real, fake, self.subsets, self.subset_size, self.seed, self.scale)
        return _scalar(mean), _scalar(std)


@metrics.register("prdc")
class PrecisionRecallDensityCoverage(FeatureDistributionMetric):
    """`compute` gives {"precision", "recall", "density", "coverage"}: all higher is better (density may pass 1);
    a `MetricCollection` flattens the four into its result."""

    name = "prdc"
    higher_is_better = True
    description = "k-NN precision/recall (Kynkäänniemi, k=3) and density/coverage (Naeem, k=5) of generated features"

    def __init__(self, extractor: FeatureExtractor | None = None, k_pr: int = 3, k_dc: int = 5, **kwargs: Any) -> None:
        super().__init__(extractor, **kwargs)
        self.k_pr, self.k_dc = k_pr, k_dc

    def compute(self) -> dict[str, Tensor]:
        values = precision_recall_density_coverage(*self.features(), self.k_pr, self.k_dc)
        return {key: _scalar(value) for key, value in values.items()}


@metrics.register("sliced-wasserstein")
class SlicedWasserstein(FeatureDistributionMetric):
    name = "sliced-wasserstein"
    higher_is_better = False
    description = "SW₂: root mean over seeded random directions of the squared 1-D W₂ of projected features"

    def __init__(
        self, extractor: FeatureExtractor | None = None, projections: int = 1000, seed: int = 0, **kwargs: Any
    ) -> None:
        super().__init__(extractor, **kwargs)
        self.projections, self.seed = projections, seed

    def compute(self) -> Tensor:
        return _scalar(sliced_wasserstein(*self.features(), self.projections, self.seed))


@metrics.register("mmd")
class MaximumMeanDiscrepancy(FeatureDistributionMetric):
    """Unbiased MMD² with a Gaussian kernel summed over `bandwidths` (no default: the scale depends on features)."""

    name = "mmd"
    higher_is_better = False
    description = "unbiased MMD² with the kernel Σ_σ exp(−‖x−y‖²/2σ²) over stated bandwidths σ"

    def __init__(
        self, extractor: FeatureExtractor | None = None, *, bandwidths: float | Sequence[float], **kwargs: Any
    ) -> None:
        super().__init__(extractor, **kwargs)
        self.bandwidths = bandwidths

    def compute(self) -> Tensor:
        return _scalar(rbf_mmd2(*self.features(), self.bandwidths))


def _scalar(value: float) -> Tensor:
    """A 0-d float64 tensor (exactly the float: `float()` gives it back bit for bit)."""
    return torch.tensor(value, dtype=torch.float64)
