"""1-D convolutional auto-encoders for signals: the notes' denoising AE ("dae"), a U-Net variant ("dae-unet") and a
plain AE ("ae-1d"), one network.

The network is a plain 1-D convolutional auto-encoder, as in the notes (REFERENCE.md, "Radio denoising": a plain
1-D conv auto-encoder with a narrow bottleneck, no skips): a stem convolution, three stride-2 convolutions (500 →
250 → 125 → 62 samples), a 1×1 convolution down to `latent_channels` (the bottleneck: 62 × 4 numbers for a
500-sample trace), and the mirror image with transposed convolutions. With `skip` (the `dae-unet` variant) each
decoder stage also sees the encoder's features of its own resolution (concatenated, then a 3-tap convolution), as
in a U-Net: the bottleneck path carries the coarse content and the skips the sample-level detail. The
output is linear (signals are unbounded). Each trace is divided by its own max |x| on the way in and multiplied
back on the way out, and the loss is taken on the divided traces, so that pulses of every SNR weigh alike (a plain
MSE is ruled by the loudest pulses). The loss is a weighted MSE: samples within `peak_window` of the target's
peak weigh `1 + peak_weight`, because the scored quantity is the peak. Adam with a one-cycle learning rate
(warm-up, then cosine decay to ~0), so the last steps fine-tune the peak amplitudes. `residual` (off) adds the
input to the output, so that the network learns minus the noise.

The dae and dae-unet learn noisy → clean (the loss to the paired clean signal z); ae-1d learns noisy → noisy (the
same loss to its own input) without skips, so that only what passes its bottleneck comes out: an undercomplete
auto-encoder, the lower row of the radio-denoising table (with skips it would learn to pass its input through).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from aebench.errors import AebenchError
from aebench.layers import ConvTranspose1d
from aebench.model import Batch, DataSpec, Model, ModelConfig
from aebench.registry import models

STAGES = 3  # stride-2 stages


@dataclass
class ConvAE1dConfig(ModelConfig):
    hidden: int = 8  # channels after the stem; doubled at each stride-2 stage (8, 16, 32, 64)
    latent_channels: int = 4
    stem_kernel: int = 7
    skip: bool = False  # U-Net skip connections from each encoder resolution to the decoder (dae-unet)
    residual: bool = False  # output = input + network (the network learns minus the noise)
    groups: int = 0  # GroupNorm groups after each hidden convolution (0: no normalisation)
    per_trace_scale: bool = True  # divide each input by its max |x| (and the output and loss by the same)
    peak_weight: float = 10.0  # extra loss weight of the samples near the target's peak
    peak_window: int = 5  # ± samples around argmax |target|
    lr: float = 2e-3  # the one-cycle schedule's peak
    warmup: float = 0.05  # fraction of the steps spent warming up
    betas: tuple[float, float] = (0.9, 0.999)


def signal_lengths(length: int) -> list[int]:
    """Length after each stage, the input first: Conv1d(kernel 4, stride 2, padding 1) halves (floor)."""
    lengths = [length]
    for _ in range(STAGES):
        lengths.append(lengths[-1] // 2)
    return lengths


def _block(conv: nn.Module, channels: int, groups: int) -> nn.Sequential:
    norm = [nn.GroupNorm(groups, channels)] if groups else []
    return nn.Sequential(conv, *norm, nn.LeakyReLU(0.2))


class ConvAE1d(nn.Module):
    """(B, C, L) → (B, C, L) through a (B, latent_channels, L / 8) bottleneck, plus skips if `config.skip`."""

    def __init__(self, channels: int, length: int, config: ConvAE1dConfig):
        super().__init__()
        h, k, g = config.hidden, config.stem_kernel, config.groups
        widths = [h * 2**i for i in range(STAGES + 1)]  # h, 2h, 4h, 8h: narrow where the signal is long
        lengths = signal_lengths(length)
        self.skip, self.residual = config.skip, config.residual
        self.down = nn.ModuleList([_block(nn.Conv1d(channels, h, k, padding=k // 2), h, g)])
        for c_in, c_out in zip(widths, widths[1:]):
            self.down.append(_block(nn.Conv1d(c_in, c_out, 4, stride=2, padding=1), c_out, g))
        self.to_latent = nn.Conv1d(widths[-1], config.latent_channels, 1)
        self.from_latent = _block(nn.Conv1d(config.latent_channels, widths[-1], 1), widths[-1], g)
        self.up, self.merge = nn.ModuleList(), nn.ModuleList()
        for i in reversed(range(1, STAGES + 1)):
            padding = lengths[i - 1] - 2 * lengths[i]  # 0 or 1: restores odd lengths (125 ← 62) exactly
            up = ConvTranspose1d(widths[i], widths[i - 1], 4, stride=2, padding=1, output_padding=padding)
            self.up.append(_block(up, widths[i - 1], g))
            if self.skip:
                self.merge.append(_block(nn.Conv1d(2 * widths[i - 1], widths[i - 1], 3, padding=1), widths[i - 1], g))
        self.out = nn.Conv1d(h, channels, k, padding=k // 2)

    def encode(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """The bottleneck (B, latent_channels, L / 8) and the encoder's features per resolution (finest first)."""
        features = []
        for layer in self.down:
            x = layer(x)
            features.append(x)
        return self.to_latent(x), features

    def forward(self, x: Tensor) -> Tensor:
        latent, features = self.encode(x)
        y = self.from_latent(latent)
        for j, up in enumerate(self.up):
            y = up(y)  # (B, widths[i-1], lengths[i-1])
            if self.skip:
                y = self.merge[j](torch.cat([y, features[STAGES - 1 - j]], dim=1))
        y = self.out(y)
        return x + y if self.residual else y


class _SignalAutoEncoder(Model):
    """The shared part: network, optimizer and schedule, one weighted-MSE step towards `target(batch)`, translate."""

    Config = ConvAE1dConfig
    capabilities = {"translate"}

    def __init__(self, config: ConvAE1dConfig, data: DataSpec):
        super().__init__(config, data)
        if data.kind != "signal" or len(data.shape) != 2:
            raise AebenchError(f"{self.name} needs 1-D signals (C, L), got {data.kind} data {data.shape}")
        channels, length = data.shape
        if length < 2**STAGES * 2:
            raise AebenchError(f"{self.name} needs signals of at least {2**STAGES * 2} samples, got {length}")
        if config.groups and config.hidden % config.groups:
            raise AebenchError(f"{self.name}: groups={config.groups} must divide hidden={config.hidden}")
        self.net = ConvAE1d(channels, length, config)

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"model": torch.optim.Adam(self.parameters(), lr=self.config.lr, betas=self.config.betas)}

    def configure_schedulers(
        self, optimizers: dict[str, torch.optim.Optimizer], total_steps: int
    ) -> dict[str, torch.optim.lr_scheduler.LRScheduler]:
        schedule = torch.optim.lr_scheduler.OneCycleLR(
            optimizers["model"],
            max_lr=self.config.lr,
            total_steps=max(total_steps, 2),
            pct_start=self.config.warmup,
            cycle_momentum=False,
        )
        return {"model": schedule}

    def target(self, batch: Batch) -> Tensor:
        raise NotImplementedError

    def scale(self, x: Tensor) -> Tensor:
        """(B, 1, 1): max |x| per trace, or 1."""
        if not self.config.per_trace_scale:
            return torch.ones(len(x), 1, 1, device=x.device, dtype=x.dtype)
        return x.abs().flatten(1).amax(dim=1).clamp_min(1e-6).view(-1, 1, 1)

    def loss_weights(self, target: Tensor) -> Tensor:
        """(B, 1, L): 1, plus `peak_weight` within ± `peak_window` samples of each target's max |target|."""
        at = target.abs().amax(dim=1).argmax(dim=-1, keepdim=True)  # (B, 1)
        t = torch.arange(target.shape[-1], device=target.device)
        near = ((t - at).abs() <= self.config.peak_window).to(target.dtype)  # (B, L)
        return (1.0 + self.config.peak_weight * near).unsqueeze(1)

    def training_step(self, batch: Batch, optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, float]:
        x, target = batch["x"], self.target(batch)  # (B, C, L) each
        scale = self.scale(x)
        squared = (self.net(x / scale) - target / scale).pow(2)
        loss = (squared * self.loss_weights(target)).mean()
        optimizers["model"].zero_grad(set_to_none=True)
        with torch.autocast(x.device.type, enabled=False):  # the runner's autocast covers the forward pass only
            loss.backward()
        optimizers["model"].step()
        return {"loss": loss.item()}

    def translate(self, x: Tensor) -> Tensor:
        scale = self.scale(x)
        return self.net(x / scale) * scale  # (B, C, L)


@models.register("dae")
class DenoisingAE1d(_SignalAutoEncoder):
    name = "dae"
    description = "1-D conv denoising auto-encoder (the notes' model): noisy trace → clean signal (MSE to z)"

    def __init__(self, config: ConvAE1dConfig, data: DataSpec):
        super().__init__(config, data)
        if data.pair_shape != data.shape:
            raise AebenchError(
                f"dae needs paired clean signals z of the input's shape {data.shape}, got {data.pair_shape}"
            )

    def target(self, batch: Batch) -> Tensor:
        return batch["z"]


@dataclass
class UNetDAEConfig(ConvAE1dConfig):
    skip: bool = True


@models.register("dae-unet")
class UNetDenoisingAE1d(DenoisingAE1d):
    name = "dae-unet"
    description = "1-D conv U-Net denoising auto-encoder (skips at every resolution): noisy trace → clean signal"
    Config = UNetDAEConfig


@models.register("ae-1d")
class PlainAE1d(_SignalAutoEncoder):
    name = "ae-1d"
    description = "1-D conv auto-encoder (bottleneck only) trained to reproduce its noisy input, scored as denoised"
    capabilities = {"translate", "reconstruct"}

    def target(self, batch: Batch) -> Tensor:
        return batch["x"]

    def reconstruct(self, x: Tensor) -> Tensor:
        return self.translate(x)
