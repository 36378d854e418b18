"""Variational auto-encoder (Kingma & Welling 2014): Gaussian encoder, reparameterisation, loss = recon + β·KL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from aebench.baselines._wae_nets import Arch, conv_autoencoder
from aebench.model import Batch, DataSpec, Model, ModelConfig
from aebench.registry import models


@dataclass
class VAEConfig(ModelConfig):
    latent_dim: int = 8
    hidden: int = 32  # channels of the first conv stage; doubled at each later stage
    # "small": the plain conv nets of _nets.py; "wae-paper": the WAE paper's MNIST nets with batch norm
    # (_wae_nets.py; the paper's widths are hidden = 128)
    arch: Arch = "small"
    latent_width: int = 4  # "acai-paper": the side of the latent map (latent_dim = channels · side²)
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    beta: float = 1.0  # weight of the KL term
    # bce: Bernoulli likelihood of the data rescaled to [0, 1]; mse: squared error (Gaussian, fixed variance).
    # Both are summed over pixels and averaged over the batch.
    recon: Literal["bce", "mse"] = "bce"


@models.register("vae")
class VAE(Model):
    name = "vae"
    description = "variational auto-encoder: Gaussian conv encoder, conv decoder, recon + beta*KL to N(0, I)"
    Config = VAEConfig
    capabilities = {"encode", "decode", "reconstruct", "sample"}

    def __init__(self, config: VAEConfig, data: DataSpec):
        super().__init__(config, data)
        self.encoder, self.decoder = conv_autoencoder(  # the encoder gives mean and log-variance
            config.arch, data, config.hidden, 2 * config.latent_dim, config.latent_dim, config.latent_width
        )

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"model": torch.optim.Adam(self.parameters(), lr=self.config.lr, betas=self.config.betas)}

    def posterior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mean, logvar = self.encoder(x).chunk(2, dim=1)  # (B, D) each
        return mean, logvar

    def training_step(self, batch: Batch, optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, float]:
        x = batch["x"]  # (B, C, H, W)
        mean, logvar = self.posterior(x)
        z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)  # reparameterisation
        logits = self.decoder.logits(z)  # (B, C, H, W)
        x_hat = self.decoder.squash(logits)
        if self.config.recon == "bce":
            low, high = self.data.value_range
            target = (x - low) / (high - low)  # the decoder's sigmoid lives in [0, 1] before rescaling
            recon = F.binary_cross_entropy_with_logits(logits, target, reduction="sum") / len(x)
        else:
            recon = (x_hat - x).pow(2).sum() / len(x)
        kl = 0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar).sum(dim=1).mean()  # KL(q(z|x) || N(0, I))
        loss = recon + self.config.beta * kl
        optimizers["model"].zero_grad(set_to_none=True)
        self.backward(loss)
        optimizers["model"].step()
        mse = F.mse_loss(x_hat.detach(), x)  # per pixel, comparable across models
        return self.logged({"loss": loss, "recon": recon, "kl": kl, "mse": mse})

    def encode(self, x: Tensor) -> Tensor:
        return self.posterior(x)[0]  # (B, D): the posterior mean

    def decode(self, z: Tensor) -> Tensor:
        return self.decoder(z)  # (B, C, H, W)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return self.decode(self.randn(n, self.config.latent_dim, generator=generator))
