"""Building blocks shared by the translation baselines (pix2pix, cyclegan, turbo, turbo-sim).

The image networks follow the reference pix2pix/CycleGAN code (Isola et al. 2017, Zhu et al. 2017), which the
TURBO Hubble-to-Webb code also uses: a U-Net generator, a ResNet generator, the 70×70 PatchGAN critic, N(0, 0.02)
weight init, the GAN losses, the 50-image pool of past fakes and the linear learning-rate decay. The MLP is the
Turbo-Sim one. Generators end in tanh, mapped onto the data's value range.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aebench.errors import AebenchError
from aebench.model import DataSpec

NORMS = ("batch", "instance", "none")


def norm_layer(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels)  # affine=False, no running stats, as in the CycleGAN code
    if kind == "none":
        return nn.Identity()
    raise AebenchError(f"unknown norm '{kind}' (choose {', '.join(NORMS)})")


def conv_bias(norm: str) -> bool:
    return norm != "batch"  # batch norm's shift makes a bias redundant; the affine-free instance norm does not


def init_weights(module: nn.Module, gain: float = 0.02) -> nn.Module:
    """N(0, gain) conv/linear weights, zero biases, N(1, gain) batch-norm scales (the pix2pix/CycleGAN init)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
    return module


class ToRange(nn.Module):
    """tanh, then affinely onto (lo, hi): exactly tanh for (-1, 1) data."""

    def __init__(self, value_range: tuple[float, float]):
        super().__init__()
        lo, hi = (float(v) for v in value_range)
        self.half, self.mid = (hi - lo) / 2, (hi + lo) / 2

    def forward(self, x: Tensor) -> Tensor:
        return torch.tanh(x) * self.half + self.mid


# --- data checks ----------------------------------------------------------------------------------------------------
def paired_images(data: DataSpec, model: str) -> tuple[int, int, int, int]:
    """(x channels, z channels, H, W) of paired image data; AebenchError for anything else."""
    if data.kind != "image" or len(data.shape) != 3:
        raise AebenchError(f"{model} translates images (C, H, W); got {data.kind} data of shape {data.shape}")
    if data.pair_shape is None or len(data.pair_shape) != 3:
        raise AebenchError(f"{model} needs paired images: DataSpec.pair_shape must be (C, H, W), got {data.pair_shape}")
    if tuple(data.shape[1:]) != tuple(data.pair_shape[1:]):
        raise AebenchError(f"{model} needs x and z of the same size, got {data.shape} and {data.pair_shape}")
    return data.shape[0], data.pair_shape[0], data.shape[1], data.shape[2]


def halvings(height: int, width: int) -> int:
    """How often both sides halve exactly before the smaller side reaches 1 (256 → 8, 64×32 → 5, 48 → 4)."""
    depth = 0
    while min(height, width) > 1 and height % 2 == 0 and width % 2 == 0:
        height, width, depth = height // 2, width // 2, depth + 1
    return depth


# --- U-Net generator (pix2pix) ---------------------------------------------------------------------------------------
class UNetBlock(nn.Module):
    """One level of the U-Net: down, the inner levels, up; the input is stacked onto the output (the skip).

    With `out` given it is the outermost level: `outer` input channels to `out` output channels, no skip.
    """

    def __init__(
        self, outer: int, inner: int, sub: nn.Module | None, norm: str, dropout: float, out: int | None = None
    ):
        super().__init__()
        bias = conv_bias(norm)
        down_conv = nn.Conv2d(outer, inner, 4, stride=2, padding=1, bias=bias)
        up_in = inner if sub is None else 2 * inner  # an inner level returns its input and its output stacked
        self.outermost = out is not None
        if self.outermost:
            down = [down_conv]
            up = [nn.ReLU(), nn.ConvTranspose2d(up_in, out, 4, stride=2, padding=1)]
        elif sub is None:  # innermost: no norm on the 1×1 (or 2×2) bottleneck
            down = [nn.LeakyReLU(0.2), down_conv]
            up = [nn.ReLU(), nn.ConvTranspose2d(up_in, outer, 4, 2, 1, bias=bias), norm_layer(norm, outer)]
        else:
            down = [nn.LeakyReLU(0.2), down_conv, norm_layer(norm, inner)]
            up = [nn.ReLU(), nn.ConvTranspose2d(up_in, outer, 4, 2, 1, bias=bias), norm_layer(norm, outer)]
            up += [nn.Dropout(dropout)] if dropout > 0 else []
        self.model = nn.Sequential(*down, *([sub] if sub is not None else []), *up)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)


class UNetGenerator(nn.Module):
    """(B, in_channels, H, W) → (B, out_channels, H, W) in value_range.

    The pix2pix U-Net with as many levels as the size allows (256 px: 8, the paper's unet_256; 64 px: 6). Level i
    has hidden·min(2^i, 8) channels; levels 4 … depth-2 (the repeated 8·hidden ones) carry dropout.
    """

    def __init__(self, in_channels: int, out_channels: int, height: int, width: int, hidden: int, norm: str,
                 dropout: float, value_range: tuple[float, float]):  # fmt: skip
        super().__init__()
        depth = halvings(height, width)
        if depth < 3:
            raise AebenchError(f"the U-Net needs images whose sides divide by 8, got {height}×{width}")
        channels = [hidden * min(2**i, 8) for i in range(depth)]
        block = None
        for i in reversed(range(1, depth)):  # innermost first
            drop = dropout if 4 <= i <= depth - 2 else 0.0
            block = UNetBlock(channels[i - 1], channels[i], block, norm, drop)
        self.net = nn.Sequential(
            UNetBlock(in_channels, channels[0], block, norm, 0.0, out_channels), ToRange(value_range)
        )
        self.depth = depth
        init_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


# --- ResNet generator (CycleGAN, TURBO) ------------------------------------------------------------------------------
class ResnetBlock(nn.Module):
    def __init__(self, channels: int, norm: str, dropout: float):
        super().__init__()
        bias = conv_bias(norm)
        layers = [nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias), norm_layer(norm, channels)]
        layers += [nn.ReLU()] + ([nn.Dropout(dropout)] if dropout > 0 else [])
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias), norm_layer(norm, channels)]
        self.block = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.block(x)


class ResnetGenerator(nn.Module):
    """(B, in_channels, H, W) → (B, out_channels, H, W) in value_range; H and W must divide by 4.

    c7s1-h, d2h, d4h, n_blocks × R4h, u2h, uh, c7s1-out, tanh (the CycleGAN resnet_9blocks for n_blocks=9).
    """

    def __init__(self, in_channels: int, out_channels: int, height: int, width: int, hidden: int, n_blocks: int,
                 norm: str, dropout: float, value_range: tuple[float, float]):  # fmt: skip
        super().__init__()
        if height % 4 or width % 4 or min(height, width) < 8:
            raise AebenchError(f"the ResNet generator needs sides that divide by 4 (at least 8), got {height}×{width}")
        bias = conv_bias(norm)
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, hidden, 7, bias=bias), norm_layer(norm, hidden)]
        layers += [nn.ReLU()]
        for mult in (1, 2):  # two stride-2 downsamplings
            c = hidden * mult
            layers += [nn.Conv2d(c, 2 * c, 3, stride=2, padding=1, bias=bias), norm_layer(norm, 2 * c), nn.ReLU()]
        layers += [ResnetBlock(4 * hidden, norm, dropout) for _ in range(n_blocks)]
        for mult in (4, 2):
            c = hidden * mult
            up = nn.ConvTranspose2d(c, c // 2, 3, stride=2, padding=1, output_padding=1, bias=bias)
            layers += [up, norm_layer(norm, c // 2), nn.ReLU()]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(hidden, out_channels, 7), ToRange(value_range)]
        self.net = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


# --- PatchGAN critic ------------------------------------------------------------------------------------------------
class PatchCritic(nn.Module):
    """(B, in_channels, H, W) → (B, 1, H', W') logits: the 70×70 PatchGAN (3 stride-2 layers, 2 stride-1).

    H' = H/8 - 2, so images of at least 32 px.
    """

    def __init__(self, in_channels: int, hidden: int, norm: str, height: int, width: int):
        super().__init__()
        if min(height, width) < 32:
            raise AebenchError(f"the 70×70 PatchGAN critic needs images of at least 32×32, got {height}×{width}")
        bias = conv_bias(norm)
        layers = [nn.Conv2d(in_channels, hidden, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        channels = [hidden * min(2**i, 8) for i in range(4)]
        for i, stride in ((1, 2), (2, 2), (3, 1)):
            layers += [nn.Conv2d(channels[i - 1], channels[i], 4, stride=stride, padding=1, bias=bias)]
            layers += [norm_layer(norm, channels[i]), nn.LeakyReLU(0.2)]
        layers += [nn.Conv2d(channels[3], 1, 4, stride=1, padding=1)]
        self.net = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


# --- MLP (Turbo-Sim) ------------------------------------------------------------------------------------------------
class MLP(nn.Sequential):
    """(B, in_features) → (B, out_features): Linear layers of the given widths with ReLU between, linear output."""

    def __init__(self, in_features: int, widths: list[int], out_features: int):
        sizes = [in_features, *widths, out_features]
        layers: list[nn.Module] = []
        for a, b in zip(sizes, sizes[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        super().__init__(*layers[:-1])


# --- losses ---------------------------------------------------------------------------------------------------------
GAN_MODES = ("vanilla", "lsgan", "wgan-gp")


def gan_loss(logits: Tensor, real: bool, mode: str) -> Tensor:
    """The critic's loss for calling `logits` real (or fake): BCE (vanilla), MSE to 1/0 (lsgan), ∓mean (wgan-gp).

    A generator minimises gan_loss(critic(fake), True).
    """
    if mode in ("vanilla", "lsgan"):
        # The label as one value broadcast to the logits' shape (as the reference GANLoss): no label-sized tensor.
        target = logits.new_full((), 1.0 if real else 0.0).expand_as(logits)
        loss = F.binary_cross_entropy_with_logits if mode == "vanilla" else F.mse_loss
        return loss(logits, target)
    if mode == "wgan-gp":
        return -logits.mean() if real else logits.mean()
    raise AebenchError(f"unknown gan_mode '{mode}' (choose {', '.join(GAN_MODES)})")


def distance(a: Tensor, b: Tensor, kind: str) -> Tensor:
    if kind == "l1":
        return F.l1_loss(a, b)
    if kind == "mse":
        return F.mse_loss(a, b)
    raise AebenchError(f"unknown distance '{kind}' (choose l1 or mse)")


# --- image pool -----------------------------------------------------------------------------------------------------
class ImagePool(nn.Module):
    """The last `size` fakes; the critic sees a past fake instead of the new one half the time (Shrivastava 2017).

    Its randomness comes from its own generator, and its images and generator state are part of the state_dict
    (extra state), so a run resumed from a checkpoint continues exactly.
    """

    def __init__(self, size: int):
        super().__init__()
        self.size = size
        self.images: Tensor | None = None  # (n ≤ size, ...)
        self.generator = torch.Generator().manual_seed(int(torch.randint(0, 2**62, ())))  # from the run's seed

    def forward(self, fakes: Tensor) -> Tensor:
        fakes = fakes.detach()
        if self.size == 0:
            return fakes
        stored = fakes[:0] if self.images is None else self.images.to(fakes.device, fakes.dtype)
        n = len(fakes)
        coins = torch.rand(n, generator=self.generator).tolist()
        slots = torch.randint(0, self.size, (n,), generator=self.generator).tolist()
        out, pool = fakes.clone(), list(stored.unbind(0))
        for i in range(n):
            if len(pool) < self.size:  # filling up: keep the new fake and use it
                pool.append(fakes[i])
            elif coins[i] > 0.5:  # use a stored fake and store the new one in its place
                out[i], pool[slots[i]] = pool[slots[i]], fakes[i]
        self.images = torch.stack(pool)
        return out

    def get_extra_state(self) -> dict[str, Any]:
        images = torch.empty(0) if self.images is None else self.images
        return {"images": images, "rng": self.generator.get_state()}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.images = state["images"] if state["images"].numel() else None
        self.generator.set_state(state["rng"])


# --- schedules ------------------------------------------------------------------------------------------------------
def linear_decay(
    optimizers: dict[str, torch.optim.Optimizer], total_steps: int, decay_from: float
) -> dict[str, torch.optim.lr_scheduler.LRScheduler]:
    """Constant learning rate for the first `decay_from` of the steps, then linearly towards 0 (pix2pix, CycleGAN)."""
    start = int(decay_from * total_steps)
    if start >= total_steps:
        return {}

    def factor(step: int) -> float:
        return 1.0 - max(0, step - start) / (total_steps - start + 1)

    return {name: torch.optim.lr_scheduler.LambdaLR(o, factor) for name, o in optimizers.items()}
