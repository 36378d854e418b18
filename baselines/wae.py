"""Wasserstein auto-encoder, WAE-MMD (Tolstikhin et al. 2018): recon + λ·MMD(q(z), N(0, I)), IMQ kernel."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from aebench.baselines._wae_nets import Arch, conv_autoencoder
from aebench.model import Batch, DataSpec, Model, ModelConfig
from aebench.registry import models


@dataclass
class WAEConfig(ModelConfig):
    latent_dim: int = 8
    hidden: int = 32  # channels of the first conv stage; doubled at each later stage
    # "small": the plain conv nets of _nets.py; "wae-paper": the WAE paper's MNIST nets with batch norm
    # (_wae_nets.py; the paper's widths are hidden = 128)
    arch: Arch = "small"
    latent_width: int = 4  # "acai-paper": the side of the latent map (latent_dim = channels · side²)
    lr: float = 1e-3
    betas: tuple[float, float] = (0.5, 0.999)  # the paper's MNIST setting
    mmd_weight: float = 10.0  # λ
    kernel_scales: tuple[float, ...] = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)  # multiples of C = 2·latent_dim·σ²


def imq_mmd(a: Tensor, b: Tensor, scales: list[float]) -> Tensor:
    """Unbiased MMD² between samples a, b (n, D) with the inverse multiquadric kernel C / (C + ‖x − y‖²).

    Summed over the kernel widths C = s·2·D·σ², σ² = 1 (the N(0, I) prior), as in the authors' code.
    """
    n, dim = a.shape
    if n < 2:
        raise ValueError("the unbiased MMD estimate needs at least 2 samples per batch")
    both = torch.cat([a, b])  # (2n, D)
    d2 = (both[:, None, :] - both[None, :, :]).pow(2).sum(-1)  # (2n, 2n); exact zeros on the diagonal
    kernel = sum(c / (c + d2) for c in (s * 2.0 * dim for s in scales))
    k_aa, k_bb, k_ab = kernel[:n, :n], kernel[n:, n:], kernel[:n, n:]
    within = (k_aa.sum() - k_aa.diagonal().sum() + k_bb.sum() - k_bb.diagonal().sum()) / (n * (n - 1))
    return within - 2.0 * k_ab.mean()


@models.register("wae")
class WAE(Model):
    name = "wae"
    description = "Wasserstein auto-encoder (WAE-MMD, IMQ kernel): deterministic conv encoder, N(0, I) prior"
    Config = WAEConfig
    capabilities = {"encode", "decode", "reconstruct", "sample"}

    def __init__(self, config: WAEConfig, data: DataSpec):
        super().__init__(config, data)
        self.encoder, self.decoder = conv_autoencoder(
            config.arch, data, config.hidden, config.latent_dim, config.latent_dim, config.latent_width
        )

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"model": torch.optim.Adam(self.parameters(), lr=self.config.lr, betas=self.config.betas)}

    def training_step(self, batch: Batch, optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, float]:
        x = batch["x"]  # (B, C, H, W)
        z = self.encoder(x)  # (B, D)
        x_hat = self.decoder(z)
        recon = (x_hat - x).pow(2).sum() / len(x)  # summed over pixels, mean over the batch
        mmd = imq_mmd(z.float(), torch.randn_like(z, dtype=torch.float32), list(self.config.kernel_scales))
        loss = recon + self.config.mmd_weight * mmd
        optimizers["model"].zero_grad(set_to_none=True)
        self.backward(loss)
        optimizers["model"].step()
        mse = F.mse_loss(x_hat.detach(), x)  # per pixel, comparable across models
        return self.logged({"loss": loss, "recon": recon, "mmd": mmd, "mse": mse})

    def encode(self, x: Tensor) -> Tensor:
        return self.encoder(x)  # (B, D)

    def decode(self, z: Tensor) -> Tensor:
        return self.decoder(z)  # (B, C, H, W)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return self.decode(self.randn(n, self.config.latent_dim, generator=generator))
