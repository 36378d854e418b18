"""1-D convolutional auto-encoders for signals: a denoising AE ("dae") and a plain AE ("ae-1d"), same network.

The network is fully convolutional: a stem convolution, three stride-2 convolutions (500 → 250 → 125 → 62
samples), a 1×1 convolution down to `latent_channels` (the bottleneck: 62 × 4 numbers for a 500-sample trace),
and the mirror image with transposed convolutions; the output is linear (signals are unbounded). Each trace is
divided by its own max |x| on the way in and multiplied back on the way out, and the loss is taken on the divided
traces, so that pulses of every SNR weigh alike (a plain MSE is ruled by the loudest pulses). The dae learns
noisy → clean (MSE to the paired clean signal z); ae-1d learns noisy → noisy (MSE to its own input), so what it
removes is only what the bottleneck cannot carry: the lower row of the radio-denoising table.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from aebench.errors import AebenchError
from aebench.model import Batch, DataSpec, Model, ModelConfig
from aebench.registry import models

STAGES = 3  # stride-2 stages


@dataclass
class ConvAE1dConfig(ModelConfig):
    hidden: int = 8  # channels after the stem; doubled at each stride-2 stage (8, 16, 32, 64)
    latent_channels: int = 4
    stem_kernel: int = 7
    per_trace_scale: bool = True  # divide each input by its max |x| (and the output and loss by the same)
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)


def signal_lengths(length: int) -> list[int]:
    """Length after each stage, the input first: Conv1d(kernel 4, stride 2, padding 1) halves (floor)."""
    lengths = [length]
    for _ in range(STAGES):
        lengths.append(lengths[-1] // 2)
    return lengths


class ConvAE1d(nn.Module):
    """(B, C, L) → (B, C, L) through a (B, latent_channels, L / 8) bottleneck."""

    def __init__(self, channels: int, length: int, config: ConvAE1dConfig):
        super().__init__()
        h, k = config.hidden, config.stem_kernel
        widths = [h * 2**i for i in range(STAGES + 1)]  # h, 2h, 4h, 8h: narrow where the signal is long
        lengths = signal_lengths(length)
        encoder: list[nn.Module] = [nn.Conv1d(channels, h, k, padding=k // 2), nn.LeakyReLU(0.2)]
        for c_in, c_out in zip(widths, widths[1:]):
            encoder += [nn.Conv1d(c_in, c_out, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        encoder.append(nn.Conv1d(widths[-1], config.latent_channels, 1))
        decoder: list[nn.Module] = [nn.Conv1d(config.latent_channels, widths[-1], 1), nn.LeakyReLU(0.2)]
        for i in reversed(range(1, STAGES + 1)):
            padding = lengths[i - 1] - 2 * lengths[i]  # 0 or 1: restores odd lengths (125 ← 62) exactly
            decoder += [
                nn.ConvTranspose1d(widths[i], widths[i - 1], 4, stride=2, padding=1, output_padding=padding),
                nn.LeakyReLU(0.2),
            ]
        decoder.append(nn.Conv1d(h, channels, k, padding=k // 2))
        self.encoder, self.decoder = nn.Sequential(*encoder), nn.Sequential(*decoder)

    def forward(self, x: Tensor) -> Tensor:
        return self.decoder(self.encoder(x))


class _SignalAutoEncoder(Model):
    """The shared part: network, optimizer, one MSE step towards `target(batch)`, translate."""

    Config = ConvAE1dConfig
    capabilities = {"translate"}

    def __init__(self, config: ConvAE1dConfig, data: DataSpec):
        super().__init__(config, data)
        if data.kind != "signal" or len(data.shape) != 2:
            raise AebenchError(f"{self.name} needs 1-D signals (C, L), got {data.kind} data {data.shape}")
        channels, length = data.shape
        if length < 2**STAGES * 2:
            raise AebenchError(f"{self.name} needs signals of at least {2**STAGES * 2} samples, got {length}")
        self.net = ConvAE1d(channels, length, config)

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"model": torch.optim.Adam(self.parameters(), lr=self.config.lr, betas=self.config.betas)}

    def target(self, batch: Batch) -> Tensor:
        raise NotImplementedError

    def scale(self, x: Tensor) -> Tensor:
        """(B, 1, 1): max |x| per trace, or 1."""
        if not self.config.per_trace_scale:
            return torch.ones(len(x), 1, 1, device=x.device, dtype=x.dtype)
        return x.abs().flatten(1).amax(dim=1).clamp_min(1e-6).view(-1, 1, 1)

    def training_step(self, batch: Batch, optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, float]:
        x, target = batch["x"], self.target(batch)  # (B, C, L) each
        scale = self.scale(x)
        loss = (self.net(x / scale) - target / scale).pow(2).mean()
        optimizers["model"].zero_grad(set_to_none=True)
        loss.backward()
        optimizers["model"].step()
        return {"loss": loss.item()}

    def translate(self, x: Tensor) -> Tensor:
        scale = self.scale(x)
        return self.net(x / scale) * scale  # (B, C, L)


@models.register("dae")
class DenoisingAE1d(_SignalAutoEncoder):
    name = "dae"
    description = "1-D conv denoising auto-encoder: noisy trace → clean signal (MSE to the paired z)"

    def __init__(self, config: ConvAE1dConfig, data: DataSpec):
        super().__init__(config, data)
        if data.pair_shape != data.shape:
            raise AebenchError(
                f"dae needs paired clean signals z of the input's shape {data.shape}, got {data.pair_shape}"
            )

    def target(self, batch: Batch) -> Tensor:
        return batch["z"]


@models.register("ae-1d")
class PlainAE1d(_SignalAutoEncoder):
    name = "ae-1d"
    description = "1-D conv auto-encoder trained to reproduce its noisy input; its output scored as denoised"
    capabilities = {"translate", "reconstruct"}

    def target(self, batch: Batch) -> Tensor:
        return batch["x"]

    def reconstruct(self, x: Tensor) -> Tensor:
        return self.translate(x)
