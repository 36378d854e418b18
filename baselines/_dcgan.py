"""DCGAN generator and discriminator (Radford, Metz & Chintala 2016) shared by the gan, acgan, wgan-gp and wgan-div
baselines.

The generator projects its input vector to a small s×s map with one transposed convolution, then doubles the size
with k transposed convolutions (kernel 4, stride 2, padding 1): 4 → 8 → 16 → 32 → 64 for 64×64 images, 7 → 14 → 28
for MNIST. BatchNorm and ReLU after every layer but the last, which ends in tanh. The discriminator mirrors it with
stride-2 convolutions and LeakyReLU(0.2), no normalisation on the first layer, and a last s×s convolution to
`out_features` scores. Channels: hidden at the image-sized stage, doubled per halving, capped at 8·hidden. Weights
start from N(0, 0.02) (norm scales from N(1, 0.02)), as in the DCGAN paper. Both nets work on images in [-1, 1]: the
models map real data there with `to_unit` and their samples back with `from_unit`.

Vector data (`DataSpec(kind="vector")`, e.g. the 8-Gaussians toy of the WGAN-GP paper's Fig. 1 that the tests
train on) get MLPs instead: three hidden layers of `hidden` ReLU units for both nets, no normalisation layers, as
in that paper's toy code (gan_toy.py: 512 units, no BatchNorm); the generator still ends in tanh.

Also three training helpers: `frozen` (D without weight gradients, in generator steps), `bce` (gan and acgan's
real/fake loss), `step_together` (aae and acai: both nets updated from the same weights) and `backward_into`
(vae-gan: one graph, a loss per group of nets).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aebench.errors import AebenchError
from aebench.model import DataSpec, Model

Norm = Literal["batch", "layer", "none"]


MLP_LAYERS = 3  # hidden layers of the vector-data MLPs


def mlp(in_features: int, hidden: int, out_features: int) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for i in range(MLP_LAYERS):
        layers += [nn.Linear(in_features if i == 0 else hidden, hidden), nn.ReLU()]
    return [*layers, nn.Linear(hidden, out_features)]


def interpolation_shape(data: DataSpec, n: int) -> tuple[int, ...]:
    """Shape of one interpolation weight per sample that broadcasts over a sample: (n, 1, 1, 1) for images."""
    return (n, *([1] * len(data.shape)))


def stage_sizes(data: DataSpec) -> tuple[tuple[int, int], int]:
    """The smallest feature map (s_h, s_w) and the number k of doublings from it to the image."""
    if data.kind != "image" or len(data.shape) != 3:
        raise AebenchError(
            f"the DCGAN baselines need images (C, H, W) or vectors (D,), got {data.kind} data {data.shape}"
        )
    _, h, w = data.shape
    k = 0
    while h % 2 == 0 and w % 2 == 0 and min(h, w) >= 8:  # halve while both sides stay whole and at least 4
        h, w, k = h // 2, w // 2, k + 1
    if k < 2 or max(h, w) > 8:
        raise AebenchError(
            f"the DCGAN baselines need H and W of the form s·2^k with s ≤ 8 and k ≥ 2 (16, 28, 32, 64, 128, ...), "
            f"got {data.shape[1]}×{data.shape[2]}"
        )
    return (h, w), k


def stage_channels(hidden: int, k: int) -> list[int]:
    """Channels from the smallest map to the largest feature map: ..., 4·hidden, 2·hidden, hidden."""
    return [hidden * 2 ** min(i, 3) for i in reversed(range(k))]


def make_norm(kind: Norm, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":  # over (C, H, W) of each sample with a per-channel affine, as in the WGAN-GP paper's code
        return nn.GroupNorm(1, channels)
    if kind == "none":
        return nn.Identity()
    raise AebenchError(f"unknown norm '{kind}' (known: batch, layer, none)")


def init_weights(module: nn.Module) -> None:
    """DCGAN initialisation: conv weights N(0, 0.02), norm scales N(1, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class Generator(nn.Module):
    """(B, in_features) → (B, C, H, W) in [-1, 1] (tanh); `from_unit` maps it onto the data's value range.
    On vector data (B, in_features) → (B, D) through an MLP."""

    def __init__(self, data: DataSpec, in_features: int, hidden: int):
        super().__init__()
        if _is_vector(data):
            self.net = nn.Sequential(*mlp(in_features, hidden, data.shape[0]), nn.Tanh())
            return  # PyTorch's default initialisation, as the toy code's
        (h, w), k = stage_sizes(data)
        channels = stage_channels(hidden, k)
        layers: list[nn.Module] = [
            nn.Unflatten(1, (in_features, 1, 1)),
            nn.ConvTranspose2d(in_features, channels[0], (h, w), bias=False),  # project: 1×1 → h×w
            nn.BatchNorm2d(channels[0]),
            nn.ReLU(),
        ]
        for c_in, c_out in zip(channels, channels[1:]):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
        layers += [nn.ConvTranspose2d(channels[-1], data.shape[0], 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)  # (B, C, H, W) in [-1, 1]


class Discriminator(nn.Module):
    """(B, C, H, W) in [-1, 1] (`to_unit` of the data) → (B, out_features) unbounded scores. On vector data an
    MLP without normalisation (`norm` is not used)."""

    def __init__(self, data: DataSpec, hidden: int, out_features: int = 1, norm: Norm = "batch"):
        super().__init__()
        make_norm(norm, 1)  # an unknown norm is an error on every kind of data
        if _is_vector(data):
            self.net = nn.Sequential(*mlp(data.shape[0], hidden, out_features))
            return
        (h, w), k = stage_sizes(data)
        channels = stage_channels(hidden, k)[::-1]  # largest map first
        layers: list[nn.Module] = [nn.Conv2d(data.shape[0], channels[0], 4, 2, 1), nn.LeakyReLU(0.2)]
        for c_in, c_out in zip(channels, channels[1:]):
            layers += [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=norm == "none"), make_norm(norm, c_out), nn.LeakyReLU(0.2)]
        layers += [nn.Conv2d(channels[-1], out_features, (h, w)), nn.Flatten(1)]
        self.net = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)  # (B, out_features)


def _is_vector(data: DataSpec) -> bool:
    return data.kind == "vector" and len(data.shape) == 1


def to_unit(x: Tensor, data: DataSpec) -> Tensor:
    """Data in `data.value_range` → [-1, 1]. The GANs train in [-1, 1] whatever the task's range, so that their
    gradient penalties (taken with respect to D's input) mean what they mean in the papers."""
    low, high = data.value_range
    return 2 * (x - low) / (high - low) - 1


def from_unit(u: Tensor, data: DataSpec) -> Tensor:
    """[-1, 1] → `data.value_range`."""
    low, high = data.value_range
    return low + (high - low) * (u + 1) / 2


@contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """Within: no gradients for `module`'s parameters (they still flow through it), e.g. D in a generator step."""
    flags = [p.requires_grad for p in module.parameters()]
    module.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(module.parameters(), flags):
            p.requires_grad_(flag)


def step_together(model: Model, optimizers: dict[str, torch.optim.Optimizer], losses: dict[str, Tensor]) -> None:
    """Each named optimizer's loss backward, then every step: simultaneous updates from the same weights (the ACAI
    authors' tf.group of train ops). Each loss must reach only its optimizer's weights (detach, `frozen`)."""
    for name, loss in losses.items():
        optimizers[name].zero_grad(set_to_none=True)
        model.backward(loss)  # outside autocast
    for name in losses:
        optimizers[name].step()


def backward_into(loss: Tensor, params: Iterable[nn.Parameter], retain_graph: bool = False) -> None:
    """`loss.backward()` outside autocast (as `Model.backward`) into `params` only: for models whose losses share a
    graph but each update one group of nets (VAE-GAN's encoder, decoder and discriminator)."""
    with torch.autocast(loss.device.type, enabled=False):
        loss.backward(inputs=list(params), retain_graph=retain_graph)


def bce(logits: Tensor, real: bool) -> Tensor:
    """Binary cross-entropy of D's logits against the label 'real' (1) or 'fake' (0)."""
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits, target)
