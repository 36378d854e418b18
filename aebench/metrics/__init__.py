"""The metric suite: each metric is a torchmetrics-style object registered by name."""

from aebench.metrics.base import Metric, check_finite
from aebench.metrics.distribution import (
    FeatureDistributionMetric,
    FrechetInceptionDistance,
    KernelInceptionDistance,
    MaximumMeanDiscrepancy,
    PrecisionRecallDensityCoverage,
    SlicedWasserstein,
    cubic_kernel,
    frechet_distance,
    gaussian_stats,
    kernel_inception_distance,
    precision_recall_density_coverage,
    random_directions,
    rbf_mmd2,
    sliced_wasserstein,
)
from aebench.metrics.image import MeanSquaredError, Sharpness, mean_squared_error, sharpness_per_image
from aebench.metrics.similarity import PeakSignalNoiseRatio, StructuralSimilarity, psnr_per_image, ssim_per_image

__all__ = [
    "FeatureDistributionMetric",
    "FrechetInceptionDistance",
    "KernelInceptionDistance",
    "MaximumMeanDiscrepancy",
    "MeanSquaredError",
    "Metric",
    "PeakSignalNoiseRatio",
    "PrecisionRecallDensityCoverage",
    "Sharpness",
    "SlicedWasserstein",
    "StructuralSimilarity",
    "check_finite",
    "cubic_kernel",
    "frechet_distance",
    "gaussian_stats",
    "kernel_inception_distance",
    "mean_squared_error",
    "precision_recall_density_coverage",
    "psnr_per_image",
    "random_directions",
    "rbf_mmd2",
    "sharpness_per_image",
    "sliced_wasserstein",
    "ssim_per_image",
]
