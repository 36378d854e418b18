"""The "Revisiting Autoencoders" notes' galaxy VAE (REFERENCE.md, "Galaxies (the notes)"): fully connected,
flattened image → 500 ReLU units → mean and log-variance of a 50-d Gaussian (49,152 → 500 → 2×50 on 128×128×3
galaxies), and the mirrored decoder 50 → 500 → image with a sigmoid onto the data's value range. Loss MSE + KL:
the squared error summed over pixels (of the image rescaled to [0, 1]) plus KL(q(z|x) ‖ N(0, I)), averaged over
the batch, as the Keras VAE such notes follow. The convolutional `vae` (latent 8) stays its own baseline.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aebench.errors import AebenchError
from aebench.model import Batch, DataSpec, Model, ModelConfig
from aebench.registry import models


@dataclass
class VAEMLPConfig(ModelConfig):
    latent_dim: int = 50
    hidden_units: int = 500
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    beta: float = 1.0  # weight of the KL term

    def __post_init__(self) -> None:
        if self.latent_dim < 1 or self.hidden_units < 1 or self.lr <= 0 or self.beta < 0:
            raise ValueError("latent_dim and hidden_units must be ≥ 1, lr positive and beta ≥ 0")


@models.register("vae-mlp")
class VAEMLP(Model):
    name = "vae-mlp"
    description = "the notes' galaxy VAE: MLP image → 500 → 2×50 Gaussian, 50 → 500 → image, MSE + KL"
    Config = VAEMLPConfig
    capabilities = {"encode", "decode", "reconstruct", "sample"}

    def __init__(self, config: VAEMLPConfig, data: DataSpec):
        super().__init__(config, data)
        if data.kind != "image" or len(data.shape) != 3:
            raise AebenchError(f"vae-mlp needs images (C, H, W), got {data.kind} data {data.shape}")
        pixels = math.prod(data.shape)
        h = config.hidden_units
        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(pixels, h), nn.ReLU(), nn.Linear(h, 2 * config.latent_dim))
        self.decoder = nn.Sequential(
            nn.Linear(config.latent_dim, h), nn.ReLU(), nn.Linear(h, pixels), nn.Unflatten(1, data.shape)
        )

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"model": torch.optim.Adam(self.parameters(), lr=self.config.lr, betas=self.config.betas)}

    def posterior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mean, logvar = self.encoder(self._unit(x)).chunk(2, dim=1)  # (B, D) each
        return mean, logvar

    def training_step(self, batch: Batch, optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, float]:
        x = batch["x"]  # (B, C, H, W) in the data's value range
        mean, logvar = self.posterior(x)
        z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)  # reparameterisation
        unit_hat = torch.sigmoid(self.decoder(z))  # (B, C, H, W) in [0, 1]
        recon = (unit_hat - self._unit(x)).pow(2).sum() / len(x)  # MSE summed over pixels
        kl = 0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar).sum(dim=1).mean()
        loss = recon + self.config.beta * kl
        optimizers["model"].zero_grad(set_to_none=True)
        self.backward(loss)  # outside the runner's autocast
        optimizers["model"].step()
        mse = F.mse_loss(self._from_unit(unit_hat.detach()), x)  # per pixel in the data's range, as vae's
        return self.logged({"loss": loss, "recon": recon, "kl": kl, "mse": mse})

    def encode(self, x: Tensor) -> Tensor:
        return self.posterior(x)[0]  # (B, D): the posterior mean

    def decode(self, z: Tensor) -> Tensor:
        return self._from_unit(torch.sigmoid(self.decoder(z)))  # (B, C, H, W)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return self.decode(self.randn(n, self.config.latent_dim, generator=generator))

    def _unit(self, x: Tensor) -> Tensor:
        low, high = self.data.value_range
        return (x - low) / (high - low)

    def _from_unit(self, u: Tensor) -> Tensor:
        low, high = self.data.value_range
        return low + (high - low) * u
