"""DCGAN (Radford, Metz & Chintala 2016): a convolutional generator and discriminator trained with the
non-saturating GAN loss (Goodfellow et al. 2014)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from aebench.baselines._dcgan import Discriminator, Generator, bce, from_unit, frozen, to_unit
from aebench.model import Batch, DataSpec, Model, ModelConfig
from aebench.registry import models


@dataclass
class GANConfig(ModelConfig):
    latent_dim: int = 100
    hidden_channels: int = 64  # channels of the largest feature map; doubled per halving, capped at 8×
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    n_critic: int = 1  # discriminator updates per generator update, each on the step's batch with fresh noise

    def __post_init__(self) -> None:
        if self.latent_dim < 1 or self.hidden_channels < 1 or self.n_critic < 1 or self.lr <= 0:
            raise ValueError("latent_dim, hidden_channels and n_critic must be ≥ 1 and lr positive")


@models.register("gan")
class GAN(Model):
    name = "gan"
    description = "DCGAN: conv generator with BatchNorm, LeakyReLU discriminator, non-saturating BCE loss"
    Config = GANConfig
    capabilities = {"sample"}

    def __init__(self, config: GANConfig, data: DataSpec):
        super().__init__(config, data)
        self.generator = Generator(data, config.latent_dim, config.hidden_channels)
        self.discriminator = Discriminator(data, config.hidden_channels, norm="batch")

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        return {
            "generator": torch.optim.Adam(self.generator.parameters(), lr=c.lr, betas=c.betas),
            "discriminator": torch.optim.Adam(self.discriminator.parameters(), lr=c.lr, betas=c.betas),
        }

    def training_step(self, batch: Batch, optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, float]:
        real = to_unit(batch["x"], self.data)  # (B, C, H, W) in [-1, 1]
        n = len(real)
        for _ in range(self.config.n_critic):
            fake = self.generator(self.randn(n, self.config.latent_dim))  # (B, C, H, W)
            # Real and fake go through D in separate batches (DCGAN practice: BatchNorm sees one kind at a time).
            real_logits, fake_logits = self.discriminator(real), self.discriminator(fake.detach())  # (B, 1) each
            d_loss = bce(real_logits, True) + bce(fake_logits, False)
            optimizers["discriminator"].zero_grad(set_to_none=True)
            self.backward(d_loss)  # outside the runner's autocast
            optimizers["discriminator"].step()
        with frozen(self.discriminator):  # the generator step reuses the last fakes against the updated D
            g_loss = bce(self.discriminator(fake), True)  # non-saturating: maximise log D(G(z))
        optimizers["generator"].zero_grad(set_to_none=True)
        self.backward(g_loss)  # outside the runner's autocast
        optimizers["generator"].step()
        d_real, d_fake = torch.sigmoid(real_logits.detach()).mean(), torch.sigmoid(fake_logits.detach()).mean()
        # d_*: mean D output on real / fake
        return self.logged({"d_loss": d_loss, "g_loss": g_loss, "d_real": d_real, "d_fake": d_fake})

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return from_unit(self.generator(self.randn(n, self.config.latent_dim, generator=generator)), self.data)
