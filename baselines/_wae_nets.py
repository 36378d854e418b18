"""The DCGAN-like encoder and decoder of the WAE paper's MNIST experiments (Tolstikhin et al. 2018, appendix;
the PIE paper's VAE and WAE follow it), and `conv_autoencoder`, which builds them or the small nets of _nets.py.

With hidden = 128 (the paper's widths), for 28×28 digits and an 8-dim latent:
- encoder: x (1, 28, 28) → [Conv 4×4 stride 2 "same" → BN → ReLU] with 128, 256, 512, 1024 channels
  (28 → 14 → 7 → 4 → 2) → flatten (1024·2·2) → FC to the latent (2·latent for the VAE's mean and log-variance).
  "same" as in TensorFlow: the output is ceil(size / 2) and an odd total padding puts the extra row at the end.
- decoder: z → FC to 1024·7·7 → ReLU (as in the authors' `dcgan_decoder`; the appendix lists no activation there)
  → [ConvTranspose 4×4 stride 2 → BN → ReLU] with 512, 256 channels (7 → 14 → 28) → a 4×4 stride-1 "same"
  convolution to the image's channels (the paper's third, non-upsampling fractional-strided conv; at stride 1 a
  transposed convolution is a convolution) → sigmoid into the data range (`squash`, as the paper's MNIST decoder).
`hidden` scales every width: channels hidden·(1, 2, 4, 8) in the encoder, hidden·(8, 4, 2) in the decoder.
"""

from __future__ import annotations

import math
from typing import Literal

from torch import Tensor, nn

from aebench.baselines._acai_nets import ACAIPaperDecoder, ACAIPaperEncoder
from aebench.baselines._nets import ConvDecoder, ConvEncoder, RangeDecoder, image_shape
from aebench.errors import AebenchError
from aebench.model import DataSpec

Arch = Literal["small", "wae-paper", "acai-paper"]


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's "same" padding (before, after) of one side: output ceil(size / stride), extra at the end."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def same_conv(c_in: int, c_out: int, size: tuple[int, int], stride: int) -> tuple[nn.Sequential, tuple[int, int]]:
    """4×4 convolution with "same" padding on an input of `size`; returns it and its output size."""
    (top, bottom), (left, right) = (same_padding(s, 4, stride) for s in size)
    conv = nn.Sequential(nn.ZeroPad2d((left, right, top, bottom)), nn.Conv2d(c_in, c_out, 4, stride=stride))
    return conv, (math.ceil(size[0] / stride), math.ceil(size[1] / stride))


class WAEPaperEncoder(nn.Module):
    """(B, C, H, W) → (B, out_features): 4 × [conv stride 2, BN, ReLU], then one linear layer."""

    def __init__(self, data: DataSpec, hidden: int, out_features: int):
        super().__init__()
        c, h, w = image_shape(data)
        size, layers = (h, w), []
        for c_out in (hidden, 2 * hidden, 4 * hidden, 8 * hidden):
            conv, size = same_conv(c, c_out, size, 2)
            layers += [conv, nn.BatchNorm2d(c_out), nn.ReLU()]
            c = c_out
        self.convs = nn.Sequential(*layers)
        self.fc = nn.Linear(c * size[0] * size[1], out_features)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.convs(x).flatten(1))  # (B, out_features)


class WAEPaperDecoder(RangeDecoder):
    """(B, latent_dim) → (B, C, H, W) inside `data.value_range` (see RangeDecoder); H and W multiples of 4."""

    def __init__(self, data: DataSpec, hidden: int, latent_dim: int):
        super().__init__()
        c, h, w = image_shape(data)
        if h % 4 or w % 4:
            raise AebenchError(
                f"the wae-paper decoder upsamples twice by 2: image sides must be multiples of 4, not {h}×{w}"
            )
        self.low, self.high = (float(v) for v in data.value_range)
        base = (8 * hidden, h // 4, w // 4)  # (1024, 7, 7) for MNIST at the paper's widths
        self.fc = nn.Sequential(nn.Linear(latent_dim, math.prod(base)), nn.Unflatten(1, base), nn.ReLU())
        layers: list[nn.Module] = []
        for c_in, c_out in ((8 * hidden, 4 * hidden), (4 * hidden, 2 * hidden)):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]
        layers.append(same_conv(2 * hidden, c, (h, w), 1)[0])
        self.deconvs = nn.Sequential(*layers)


def conv_autoencoder(
    arch: Arch, data: DataSpec, hidden: int, encoder_out: int, latent_dim: int, latent_width: int
) -> tuple[nn.Module, nn.Module]:
    """(encoder, decoder) of the conv auto-encoder baselines: "small" (_nets.py), "wae-paper" (this file) or
    "acai-paper" (_acai_nets.py; `latent_width`: the side of its latent map)."""
    if arch == "small":
        return ConvEncoder(data, hidden, encoder_out), ConvDecoder(data, hidden, latent_dim)
    if arch == "wae-paper":
        return WAEPaperEncoder(data, hidden, encoder_out), WAEPaperDecoder(data, hidden, latent_dim)
    if arch == "acai-paper":
        return (
            ACAIPaperEncoder(data, hidden, encoder_out, latent_width),
            ACAIPaperDecoder(data, hidden, latent_dim, latent_width),
        )
    raise AebenchError(f"unknown arch '{arch}' (known: small, wae-paper, acai-paper)")


def conv_critic(arch: Arch, data: DataSpec, hidden: int, out_features: int, latent_width: int) -> nn.Module:
    """An image critic with the encoder's architecture, (B, C, H, W) → (B, out_features): the small conv encoder,
    or the ACAI authors' encoder for "acai-paper" (their critic). Not batch-normalised: it scores mixed batches."""
    if arch == "acai-paper":
        return ACAIPaperEncoder(data, hidden, out_features, latent_width)
    return ConvEncoder(data, hidden, out_features)
