"""The print-texture score of cdp-twin: is a twin's print as rough as a real print, not just close to it on average?

A digital twin must be stochastic: the conditional mean E[x|t] (or any blurred print) is closer to a print in MSE
than a second, independent print is, but it has lost the print's noise. This score compares the distribution of a
local statistic that the noise feeds, the standard deviation of each 3 × 3 window, between twins and real prints:
the Wasserstein-1 distance between the two distributions, pooled over all windows of all images.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from aebench.errors import AebenchError
from aebench.metrics.base import Metric, check_finite

WINDOW = 3  # pixels per side of a local window
BINS = 2000  # histogram bins over [0, 0.5], the range of the standard deviation of values in [0, 1]
TOP = 0.5


def local_std(images: Tensor, window: int = WINDOW) -> Tensor:
    """(N, 1, H, W) → (N, 1, H − w + 1, W − w + 1) float64: the standard deviation of every w × w window."""
    x = images.detach().double().cpu()
    mean = F.avg_pool2d(x, window, stride=1)
    return (F.avg_pool2d(x * x, window, stride=1) - mean * mean).clamp_min(0).sqrt()


class LocalTextureW1(Metric):
    """W₁ between the distributions of 3 × 3 local standard deviations of generated and of real images.

    Histograms of `BINS` bins over [0, 0.5] (values above are counted in the last bin); W₁ = Σ |F_g − F_r|·Δ,
    with F the two cumulative distributions, exact up to the bin width (2.5e-4).
    """

    name = "texture_w1"
    higher_is_better = False
    description = "Wasserstein-1 distance between the distributions of 3×3 local standard deviations"

    def __init__(self) -> None:
        super().__init__()
        self.add_state("real", torch.zeros(BINS, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("generated", torch.zeros(BINS, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, images: Tensor, real: bool) -> None:
        if images.dim() != 4 or images.shape[1] != 1 or min(images.shape[-2:]) < WINDOW:
            raise AebenchError(
                f"texture_w1: need (N, 1, H, W) images of at least {WINDOW} pixels, got {tuple(images.shape)}"
            )
        check_finite(images, "texture_w1")
        index = (local_std(images).flatten() * (BINS / TOP)).long().clamp_(0, BINS - 1)
        counts = torch.bincount(index, minlength=BINS).double().to(self.real.device)
        if real:
            self.real += counts
        else:
            self.generated += counts

    def compute(self) -> Tensor:
        if self.real.sum() == 0 or self.generated.sum() == 0:
            raise AebenchError("texture_w1: needs both real and generated images")
        gap = torch.cumsum(self.generated / self.generated.sum() - self.real / self.real.sum(), 0)
        return gap.abs().sum() * (TOP / BINS)
