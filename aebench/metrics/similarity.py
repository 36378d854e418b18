"""Full-reference image similarity: PSNR and SSIM, per image and then averaged over images.

Both follow scikit-image (`peak_signal_noise_ratio`, `structural_similarity(..., gaussian_weights=True, sigma=1.5,
use_sample_covariance=False)`) applied to each image and averaged, with the data range always given explicitly;
both compute in float64 (scikit-image computes float32 inputs in float32).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from aebench.errors import AebenchError
from aebench.metrics.base import MeanOverImages, check_finite
from aebench.registry import metrics

SSIM_SIGMA = 1.5  # Wang et al. 2004
SSIM_WINDOW = 11  # 2 · int(3.5 σ + 0.5) + 1: scikit-image's truncation of the Gaussian at 3.5 σ
SSIM_K1, SSIM_K2 = 0.01, 0.03


def _check_data_range(data_range: float, what: str) -> float:
    if not (isinstance(data_range, (int, float)) and math.isfinite(data_range) and data_range > 0):
        raise AebenchError(
            f"{what}: data_range must be a positive number (max − min of the pixel scale), got {data_range!r}"
        )
    return float(data_range)


def _pair(prediction: Tensor, target: Tensor, data_range: float, what: str) -> tuple[Tensor, Tensor]:
    """Checked float64 copies of two image batches of the same shape."""
    if prediction.shape != target.shape:
        raise AebenchError(f"{what}: shapes differ: {tuple(prediction.shape)} and {tuple(target.shape)}")
    _check_data_range(data_range, what)
    check_finite(prediction, f"{what} prediction")
    check_finite(target, f"{what} target")
    return prediction.detach().to(torch.float64), target.detach().to(torch.float64)


def psnr_per_image(prediction: Tensor, target: Tensor, data_range: float) -> Tensor:
    """10 log10(data_range² / MSE) of each image: (N, ...) → (N,); `inf` where the two images are identical."""
    x, y = _pair(prediction, target, data_range, "psnr")
    if x.dim() < 2 or len(x) == 0:
        raise AebenchError(f"psnr: expected a batch of images (N, ...), got shape {tuple(x.shape)}")
    mse = ((x - y) ** 2).flatten(1).mean(dim=1)
    return 10 * torch.log10(data_range**2 / mse)  # x / 0 = inf in torch, as in scikit-image (which warns)


def _gaussian_window() -> list[float]:
    offsets = torch.arange(SSIM_WINDOW, dtype=torch.float64) - SSIM_WINDOW // 2
    weights = torch.exp(-0.5 * (offsets / SSIM_SIGMA) ** 2)
    return (weights / weights.sum()).tolist()  # 11 weights, summing to 1


def _gaussian_filter_valid(maps: Tensor) -> Tensor:
    """Separable Gaussian filter, 'valid' part only: (B, H, W) → (B, H-10, W-10).

    Eleven shifted in-place additions per axis: on a CPU in float64 several times faster than `conv2d`, which
    unfolds its input.
    """
    weights = _gaussian_window()
    out_h, out_w = maps.shape[1] - SSIM_WINDOW + 1, maps.shape[2] - SSIM_WINDOW + 1
    cols = maps[:, :, :out_w] * weights[0]
    for k in range(1, SSIM_WINDOW):
        cols.add_(maps[:, :, k : k + out_w], alpha=weights[k])
    both = cols[:, :out_h] * weights[0]
    for k in range(1, SSIM_WINDOW):
        both.add_(cols[:, k : k + out_h], alpha=weights[k])
    return both


def _ssim_per_plane(x: Tensor, y: Tensor, data_range: float) -> Tensor:
    """(P, H, W) single-channel planes → (P,) mean SSIM over the valid pixels of each."""
    mu_x, mu_y, xx, yy, xy = _gaussian_filter_valid(torch.cat([x, y, x * x, y * y, x * y])).chunk(5)
    var_x, var_y, cov_xy = xx - mu_x * mu_x, yy - mu_y * mu_y, xy - mu_x * mu_y  # population (co)variances
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    ssim = ((2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return ssim.flatten(1).mean(dim=1)


def ssim_per_image(prediction: Tensor, target: Tensor, data_range: float) -> Tensor:
    """Mean SSIM of each image, (N, H, W) or (N, C, H, W) → (N,); channels are averaged.

    Local statistics are Gaussian-weighted (σ = 1.5, 11 × 11 window) with population (co)variances, and the SSIM
    map is averaged over the pixels whose window lies inside the image ('valid' filtering, which is what
    scikit-image's reflect-padded filtering followed by cropping 5 pixels per side amounts to).
    """
    x, y = _pair(prediction, target, data_range, "ssim")
    if x.dim() == 3:
        x, y = x.unsqueeze(1), y.unsqueeze(1)
    if x.dim() != 4 or len(x) == 0 or min(x.shape[2:]) < SSIM_WINDOW:
        raise AebenchError(
            f"ssim: expected images (N, H, W) or (N, C, H, W) of at least {SSIM_WINDOW}×{SSIM_WINDOW} pixels "
            f"(the Gaussian window), got shape {tuple(prediction.shape)}"
        )
    n, c, h, w = x.shape
    x, y = x.reshape(n * c, h, w), y.reshape(n * c, h, w)
    # On a CPU, a few planes at a time stay in cache (~2 MB of float64 maps); a GPU takes them all at once.
    per_chunk = max(1, (2**18 if x.device.type == "cpu" else 2**28) // (5 * h * w))
    planes = [_ssim_per_plane(a, b, data_range) for a, b in zip(x.split(per_chunk), y.split(per_chunk))]
    return torch.cat(planes).view(n, c).mean(dim=1)


class _ComparedOverImages(MeanOverImages):
    """A per-image comparison of prediction with target on a stated pixel scale."""

    def __init__(self, data_range: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.data_range = _check_data_range(data_range, self.name)


@metrics.register("psnr")
class PeakSignalNoiseRatio(_ComparedOverImages):
    """PSNR in dB; `data_range` is the width of the pixel scale (1 for [0, 1], 255 for 8-bit, 2 for [-1, 1])."""

    name = "psnr"
    higher_is_better = True
    description = "mean over images of 10·log10(data_range²/MSE) in dB (skimage per image); inf if any image is exact"

    def per_image(self, prediction: Tensor, target: Tensor) -> Tensor:
        return psnr_per_image(prediction, target, self.data_range)


@metrics.register("ssim")
class StructuralSimilarity(_ComparedOverImages):
    """SSIM with a Gaussian window (σ 1.5, 11 × 11, K1 0.01, K2 0.03); `data_range` as for PSNR."""

    name = "ssim"
    higher_is_better = True
    description = "mean over images (and channels) of Gaussian-window SSIM, σ=1.5, K1=0.01, K2=0.03 (skimage)"

    def per_image(self, prediction: Tensor, target: Tensor) -> Tensor:
        return ssim_per_image(prediction, target, self.data_range)
