"""Per-image metrics: reconstruction MSE and the PIE paper's sharpness."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from aebench.errors import AebenchError
from aebench.metrics.base import ItemMean, MeanOverImages, Metric, check_finite
from aebench.registry import metrics

LAPLACE_KERNEL = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])


def sharpness_per_image(images: Tensor) -> Tensor:
    """Variance of the Laplace response ('valid' convolution) of each grayscale image in [0, 1].

    PIE paper definition; (N, H, W) or (N, 1, H, W) → (N,), variance with ddof 0, computed in float64.
    """
    check_finite(images, "sharpness")
    if images.dim() == 4:
        if images.shape[1] != 1:
            raise AebenchError(f"sharpness: expected grayscale images (N, 1, H, W), got {tuple(images.shape)}")
        images = images[:, 0]
    if images.dim() != 3 or min(images.shape[1:]) < 3:
        raise AebenchError(f"sharpness: expected images (N, H, W) of at least 3×3 pixels, got {tuple(images.shape)}")
    x = images.detach().to("cpu", torch.float64).unsqueeze(1)
    response = torch.nn.functional.conv2d(x, LAPLACE_KERNEL.to(torch.float64).view(1, 1, 3, 3))  # (N, 1, H-2, W-2)
    return response.flatten(1).var(dim=1, unbiased=False)


def mean_squared_error(a: Tensor, b: Tensor) -> float:
    if a.shape != b.shape:
        raise AebenchError(f"mse: shapes differ: {tuple(a.shape)} and {tuple(b.shape)}")
    return float(((a.double() - b.double()) ** 2).mean())


@metrics.register("sharpness")
class Sharpness(MeanOverImages):
    name = "sharpness"
    higher_is_better = True
    description = "mean over images of the variance of the Laplace-filtered image (PIE paper)"

    def per_image(self, images: Tensor) -> Tensor:
        return sharpness_per_image(images)


@metrics.register("mse")
class MeanSquaredError(Metric):
    name = "mse"
    higher_is_better = False
    description = "mean squared error over all pixels of all images"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_state("total", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")
        # per-image MSE (images of one size: their mean is the value), for its interval
        self.add_state("items", [], dist_reduce_fx="cat")

    def update(self, prediction: Tensor, target: Tensor) -> None:
        if prediction.shape != target.shape:
            raise AebenchError(f"mse: shapes differ: {tuple(prediction.shape)} and {tuple(target.shape)}")
        check_finite(prediction, "mse")
        device = self.total.device
        diff = prediction.detach().double().to(device) - target.detach().double().to(device)
        self.total += (diff**2).sum()
        self.count += diff.numel()
        if diff.dim() > 0 and len(diff):
            self.items.append((diff**2).reshape(len(diff), -1).mean(dim=1))

    def compute(self) -> Tensor:
        if self.count == 0:
            raise AebenchError("mse: no values were given")
        return self.total / self.count

    def value(self) -> float:
        """A float; an `ItemMean` over the images when batches of images were given."""
        with self.sync_context(should_sync=self._to_sync, should_unsync=self._should_unsync):
            if self.count == 0:
                raise AebenchError("mse: no values were given")
            value = float(self.total / self.count)
            return ItemMean(value, self.gathered("items")) if len(self.items) else value
