"""The metric suite: each metric is a torchmetrics-style object registered by name."""

from aebench.metrics.base import Metric, check_finite
from aebench.metrics.distribution import FrechetInceptionDistance, frechet_distance, gaussian_stats
from aebench.metrics.image import MeanSquaredError, Sharpness, mean_squared_error, sharpness_per_image

__all__ = [
    "FrechetInceptionDistance",
    "MeanSquaredError",
    "Metric",
    "Sharpness",
    "check_finite",
    "frechet_distance",
    "gaussian_stats",
    "mean_squared_error",
    "sharpness_per_image",
]
