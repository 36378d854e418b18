"""Convolutional encoder and decoder shared by the ae, vae and wae baselines (identical in all three).

The encoder halves the image with stride-2 convolutions until its smaller side is at most 8 pixels (28 → 14 → 7,
64 → 32 → 16 → 8), then maps the flattened features to a vector with one linear layer. The decoder mirrors it;
its transposed convolutions use output_padding so that odd sizes (7 → 14 → 28, 25 → 12 → 25) come back exactly.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from aebench.errors import AebenchError
from aebench.model import DataSpec


def feature_sizes(height: int, width: int, smallest: int = 8) -> list[tuple[int, int]]:
    """Spatial size of each stage, the image first: halve until the smaller side is at most `smallest`."""
    sizes = [(height, width)]
    while min(sizes[-1]) > smallest:
        h, w = sizes[-1]
        sizes.append((h // 2, w // 2))  # what Conv2d(kernel 4, stride 2, padding 1) gives
    return sizes


def stage_channels(image_channels: int, hidden: int, n_stages: int) -> list[int]:
    """Channels of each stage, the image first: hidden, 2·hidden, 4·hidden, ... capped at 8·hidden."""
    return [image_channels] + [hidden * 2 ** min(i, 3) for i in range(n_stages - 1)]


def image_shape(data: DataSpec) -> tuple[int, int, int]:
    if data.kind != "image" or len(data.shape) != 3:
        raise AebenchError(f"the convolutional baselines need images (C, H, W), got {data.kind} data {data.shape}")
    return data.shape  # type: ignore[return-value]


class ConvEncoder(nn.Module):
    """(B, C, H, W) → (B, out_features)."""

    def __init__(self, data: DataSpec, hidden: int, out_features: int):
        super().__init__()
        c, h, w = image_shape(data)
        sizes = feature_sizes(h, w)
        channels = stage_channels(c, hidden, len(sizes))
        layers: list[nn.Module] = []
        for c_in, c_out in zip(channels, channels[1:]):
            layers += [nn.Conv2d(c_in, c_out, kernel_size=4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        self.convs = nn.Sequential(*layers)
        self.fc = nn.Linear(channels[-1] * sizes[-1][0] * sizes[-1][1], out_features)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.convs(x).flatten(1))  # (B, out_features)


class RangeDecoder(nn.Module):
    """A decoder whose output is lo + (hi - lo)·sigmoid(logits): a sigmoid for [0, 1] data, tanh(logits / 2) for
    [-1, 1] data. `logits` gives the pre-activation, for losses that want it (binary cross-entropy with logits).
    Subclasses build `fc` and `deconvs` and set `low`, `high`."""

    low: float
    high: float
    fc: nn.Module
    deconvs: nn.Module

    def logits(self, z: Tensor) -> Tensor:
        return self.deconvs(self.fc(z))  # (B, C, H, W), unbounded

    def squash(self, logits: Tensor) -> Tensor:
        return self.low + (self.high - self.low) * torch.sigmoid(logits)  # into value_range

    def forward(self, z: Tensor) -> Tensor:
        return self.squash(self.logits(z))  # (B, C, H, W)


class ConvDecoder(RangeDecoder):
    """(B, latent_dim) → (B, C, H, W) inside `data.value_range` (see RangeDecoder)."""

    def __init__(self, data: DataSpec, hidden: int, latent_dim: int):
        super().__init__()
        c, h, w = image_shape(data)
        sizes = feature_sizes(h, w)
        channels = stage_channels(c, hidden, len(sizes))
        self.low, self.high = (float(v) for v in data.value_range)
        self.fc = nn.Linear(latent_dim, channels[-1] * sizes[-1][0] * sizes[-1][1])
        layers: list[nn.Module] = [nn.Unflatten(1, (channels[-1], *sizes[-1]))]
        for i in reversed(range(1, len(sizes))):
            (h_out, w_out), (h_in, w_in) = sizes[i - 1], sizes[i]
            padding = (h_out - 2 * h_in, w_out - 2 * w_in)  # 0 or 1: restores odd sizes exactly
            layers += [
                nn.LeakyReLU(0.2),
                nn.ConvTranspose2d(channels[i], channels[i - 1], 4, stride=2, padding=1, output_padding=padding),
            ]
        self.deconvs = nn.Sequential(*layers)
