"""The CDP metric: Hamming distance between binary templates t and Otsu-binarised estimates t̃ (TURBO paper).

Each estimate is min-max normalised to [0, 1] on its own, quantised to 256 grey levels (an 8-bit image, as
scans are stored and as OpenCV's Otsu expects), binarised at its own Otsu threshold (levels above the threshold are
1, as in `skimage.filters.threshold_otsu`'s convention), and compared with its template pixel by pixel. The
quantisation matters: on float values skimage's threshold is a bin centre, and a tight cluster of values inside that
bin is split in two (up to 13 % of a clean print's pixels flipped). A constant estimate (min = max) has no
threshold; it is normalised to all zeros and binarised to all 0.
Symbols of more than one pixel must be reduced to one pixel each by the caller if a per-symbol rate is wanted.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from aebench.errors import AebenchError
from aebench.metrics.base import MeanOverImages, check_finite
from aebench.registry import metrics


def as_images(images: Tensor | np.ndarray, what: str) -> np.ndarray:
    """(N, 1, H, W) or (N, H, W) grayscale images → (N, H, W) float64 numpy; NaN input is an error."""
    x = images.detach().cpu() if isinstance(images, Tensor) else torch.as_tensor(np.asarray(images))
    check_finite(x.to(torch.float64), what)
    if x.dim() == 4:
        if x.shape[1] != 1:
            raise AebenchError(f"{what}: expected grayscale images (N, 1, H, W), got {tuple(x.shape)}")
        x = x[:, 0]
    if x.dim() != 3 or x.numel() == 0:
        raise AebenchError(f"{what}: expected images (N, H, W) or (N, 1, H, W), got {tuple(x.shape)}")
    return x.numpy().astype(np.float64)


def minmax_normalise(images: Tensor | np.ndarray) -> np.ndarray:
    """(N, H, W) float64: each image mapped to [0, 1] by its own min and max; a constant image becomes all zeros."""
    x = as_images(images, "minmax_normalise")
    low = x.min(axis=(1, 2), keepdims=True)
    span = x.max(axis=(1, 2), keepdims=True) - low
    return np.where(span > 0, (x - low) / np.where(span > 0, span, 1.0), 0.0)


def otsu_threshold(images: Tensor | np.ndarray, nbins: int = 256) -> np.ndarray:
    """(N,) Otsu threshold of each image, equal to `skimage.filters.threshold_otsu(image, nbins)` (float images).

    As skimage: a histogram of `nbins` equal bins over the image's [min, max] (numpy's bin assignment), thresholds
    at the bin centres, the one maximising the between-class variance w1·w2·(μ1 − μ2)² (first on ties); a constant
    image's threshold is its value. Counts are float32 as in skimage, so near-ties break the same way.
    """
    x = as_images(images, "otsu")
    x = x.reshape(len(x), -1)  # (N, P)
    low, high = x.min(axis=1), x.max(axis=1)
    constant = low == high
    high = np.where(constant, low + 1.0, high)  # a dummy range: linspace would treat all rows differently otherwise
    edges = np.linspace(low, high, nbins + 1, axis=1)  # (N, nbins + 1), the edges np.histogram uses
    # numpy's equal-bin index, then its ±1 correction so the index agrees with the edges.
    index = (((x - low[:, None]) / (high - low)[:, None]) * nbins).astype(np.intp)
    index[index == nbins] -= 1
    index -= x < np.take_along_axis(edges, index, axis=1)
    index += (x >= np.take_along_axis(edges, index + 1, axis=1)) & (index != nbins - 1)
    rows = np.arange(len(x))[:, None]
    counts = np.bincount((index + rows * nbins).ravel(), minlength=len(x) * nbins).reshape(len(x), nbins)
    counts = counts.astype(np.float32)
    centers = (edges[:, :-1] + edges[:, 1:]) / 2.0
    weight1 = np.cumsum(counts, axis=1)  # pixels at or below each candidate threshold
    weight2 = np.cumsum(counts[:, ::-1], axis=1)[:, ::-1]  # pixels at or above
    with np.errstate(invalid="ignore"):  # 0/0 only in constant images' empty bins; their threshold is replaced
        mean1 = np.cumsum(counts * centers, axis=1) / weight1
        mean2 = (np.cumsum((counts * centers)[:, ::-1], axis=1) / weight2[:, ::-1])[:, ::-1]
    variance12 = weight1[:, :-1] * weight2[:, 1:] * (mean1[:, :-1] - mean2[:, 1:]) ** 2
    threshold = centers[np.arange(len(x)), np.argmax(variance12, axis=1)]
    return np.where(constant, low, threshold)


def binarise_otsu(estimates: Tensor | np.ndarray) -> np.ndarray:
    """(N, H, W) bool: min-max normalised estimates, as 8-bit levels, above their own Otsu threshold (constant
    estimates: all False)."""
    levels = np.rint(minmax_normalise(estimates) * 255.0)
    return levels > otsu_threshold(levels)[:, None, None]


def hamming_per_image(estimates: Tensor | np.ndarray, templates: Tensor | np.ndarray) -> np.ndarray:
    """(N,) fraction of pixels where the Otsu-binarised estimate differs from the binary (0/1) template."""
    t = as_images(templates, "hamming")
    if not np.isin(t, (0.0, 1.0)).all():
        raise AebenchError("hamming: templates must be binary, with values 0 and 1 only")
    binary = binarise_otsu(estimates)
    if binary.shape != t.shape:
        raise AebenchError(f"hamming: estimates {binary.shape} and templates {t.shape} differ in shape")
    return (binary != (t == 1.0)).mean(axis=(1, 2))


@metrics.register("hamming-otsu")
class HammingOtsu(MeanOverImages):
    name = "hamming-otsu"
    higher_is_better = False
    description = "fraction of pixels where the min-max normalised, 8-bit, Otsu-binarised estimate differs from t (CDP)"

    def per_image(self, estimates: Tensor, templates: Tensor) -> np.ndarray:
        return hamming_per_image(estimates, templates)
