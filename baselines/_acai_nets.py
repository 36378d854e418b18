"""The encoder and decoder of the ACAI authors' code (github.com/brain-research/acai, `lib/layers.py`), shared there
by every auto-encoder of the paper's tables (baseline, denoising, dropout, VAE, AAE, VQ-VAE, ACAI); ACAI's critic is
the same encoder with every value of its latent map averaged into one score.

With `depth` channels (the `hidden` of the suite's configs) and `scales` = log2(image side / latent side):
- encoder: 1×1 conv to depth → per scale s = 0 … scales − 1: [3×3 conv to depth·2ˢ → leaky ReLU] × 2 → 2×2 average
  pooling → 3×3 conv to depth·2^scales → leaky ReLU → 3×3 conv to the latent channels (linear). The latent is that
  map, (channels, side, side), flattened channel-major to a vector of channels · side² values.
- decoder: the vector back to its map → per scale s = scales − 1 … 0: [3×3 conv to depth·2ˢ → leaky ReLU] × 2 →
  nearest-neighbour upsampling ×2 → 3×3 conv to depth → leaky ReLU → 3×3 conv to the image's channels (linear).
Every convolution is "same"-padded with bias (initialised at 0, as TensorFlow's), its weights drawn from N(0, 1 /
((1 + 0.2²) fan_in)) (their `HeModifiedNormalInitializer(0.2)`); leaky ReLUs have slope 0.2 (`tf.nn.leaky_relu`).
The lines run uses depth 16 and a 2 × 2 × 16 latent (`runs/acai.sh`: latent_width 2, latent 16), MNIST 4 × 4 × 2 or
4 × 4 × 16.

As a `RangeDecoder`, the decoder's `logits` are its linear output (what the authors' auto-encoders train on, as the
suite's ae and acai do) and `forward` squashes them into the data range (what the suite's vae, wae and aae use).
"""

from __future__ import annotations

import math

from torch import Tensor, nn

from aebench.baselines._nets import RangeDecoder, image_shape
from aebench.errors import AebenchError
from aebench.model import DataSpec

SLOPE = 0.2  # tf.nn.leaky_relu's default, and the initialiser's slope


def conv3(c_in: int, c_out: int, kernel: int = 3) -> nn.Conv2d:
    """A "same" convolution initialised as the authors' (N(0, 1 / ((1 + 0.2²) fan_in)) weights, zero bias)."""
    conv = nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2)
    nn.init.normal_(conv.weight, std=1 / math.sqrt((1 + SLOPE**2) * c_in * kernel * kernel))
    nn.init.zeros_(conv.bias)
    return conv


def latent_map(data: DataSpec, features: int, latent_width: int) -> tuple[int, int]:
    """(channels, scales) of a latent of `features` values as a (channels, latent_width, latent_width) map."""
    _, h, w = image_shape(data)
    scales = round(math.log2(w / latent_width)) if latent_width > 0 else -1
    if h != w or scales < 0 or w != latent_width << scales:
        raise AebenchError(
            f"the acai-paper nets need square images whose side is latent_width · 2^k: {h}×{w} with latent_width "
            f"{latent_width}"
        )
    if features % (latent_width * latent_width):
        raise AebenchError(
            f"the acai-paper nets' latent is a {latent_width}×{latent_width} map: its size ({features}) must be a "
            f"multiple of {latent_width * latent_width}"
        )
    return features // (latent_width * latent_width), scales


class ACAIPaperEncoder(nn.Module):
    """(B, C, H, W) → (B, out_features), the flattened (out_features / side², side, side) map."""

    def __init__(self, data: DataSpec, depth: int, out_features: int, latent_width: int):
        super().__init__()
        c = image_shape(data)[0]
        channels, scales = latent_map(data, out_features, latent_width)
        layers: list[nn.Module] = [conv3(c, depth, 1)]
        width = depth
        for scale in range(scales):
            for _ in range(2):
                layers += [conv3(width, depth << scale), nn.LeakyReLU(SLOPE)]
                width = depth << scale
            layers.append(nn.AvgPool2d(2))
        layers += [conv3(width, depth << scales), nn.LeakyReLU(SLOPE), conv3(depth << scales, channels)]
        self.convs = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.convs(x).flatten(1)  # (B, out_features), channel-major


class ACAIPaperDecoder(RangeDecoder):
    """(B, latent_dim) → (B, C, H, W): linear `logits`, squashed into `data.value_range` by `forward`."""

    def __init__(self, data: DataSpec, depth: int, latent_dim: int, latent_width: int):
        super().__init__()
        c = image_shape(data)[0]
        channels, scales = latent_map(data, latent_dim, latent_width)
        self.low, self.high = (float(v) for v in data.value_range)
        self.fc = nn.Unflatten(1, (channels, latent_width, latent_width))  # the vector back to its map
        layers: list[nn.Module] = []
        width = channels
        for scale in reversed(range(scales)):
            for _ in range(2):
                layers += [conv3(width, depth << scale), nn.LeakyReLU(SLOPE)]
                width = depth << scale
            layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
        layers += [conv3(width, depth), nn.LeakyReLU(SLOPE), conv3(depth, c)]
        self.deconvs = nn.Sequential(*layers)
