"""ACAI, the adversarially constrained auto-encoder interpolation (Berthelot, Raffel, Roy & Goodfellow, "Understanding
and Improving Interpolation in Autoencoders via an Adversarial Regularizer", ICLR 2019).

A critic d sees the decoding x̂_α = G(α z₁ + (1 − α) z₂) of a mix of two codes and regresses α; the auto-encoder
is trained to make its interpolants look like reconstructions (α ≈ 0) to the critic:

    critic:        ‖d(x̂_α) − α‖²  +  ‖d(γ x + (1 − γ) x̂)‖²         (x̂ = G(E(x)), both detached)
    auto-encoder:  ‖x − x̂‖²  +  λ ‖d(x̂_α)‖²                          (d frozen)

As the authors' code (github.com/brain-research/acai, acai.py): α ~ U[0, 1] folded onto [0, 0.5] (0.5 − |u − 0.5|),
one per sample; z₂ is the batch's codes in reverse order; every squared norm is a mean (the MSE per pixel, the
critic's outputs over the batch); γ = 0.2 (`reg`), λ = 0.5 (`advweight`); both nets step once per batch at the same
weights with Adam (lr 1e-4 there; the suite's 1e-3 here, as its other auto-encoders). Their critic is the encoder's
architecture with its outputs averaged to one score: here the encoder of the chosen `arch` (the small conv encoder
of _nets.py for "small" and "wae-paper": no batch norm, it scores mixed batches; the authors' for "acai-paper")
with its `latent_dim` outputs averaged.

The decoder's output is linear, as the authors' (and as the suite's `ae`): the losses take its unsquashed output,
and `decode` clips it to the data range. Through the sigmoid, on the lines (97 % background) every measured run
stalled on an all-background image (reconstruction MSE 0.0889 at 40 and at 2,000 steps).

ACAI has no prior, so it does not `sample`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from aebench.baselines._dcgan import frozen, step_together
from aebench.baselines._wae_nets import Arch, conv_autoencoder, conv_critic
from aebench.model import Batch, DataSpec, Model, ModelConfig
from aebench.registry import models


@dataclass
class ACAIConfig(ModelConfig):
    latent_dim: int = 8
    hidden: int = 32  # channels of the first conv stage (encoder, decoder and critic); doubled at each later stage
    # "small": the plain conv nets of _nets.py; "wae-paper": the WAE paper's MNIST nets with batch norm
    arch: Arch = "small"
    latent_width: int = 4  # "acai-paper": the side of the latent map (latent_dim = channels · side²)
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    adversarial_weight: float = 0.5  # λ (advweight)
    critic_mix: float = 0.2  # γ (reg): the critic's α = 0 examples are γ x + (1 − γ) x̂


@models.register("acai")
class ACAI(Model):
    name = "acai"
    description = "ACAI: conv auto-encoder whose latent interpolants a critic cannot tell from reconstructions"
    Config = ACAIConfig
    capabilities = {"encode", "decode", "reconstruct"}

    def __init__(self, config: ACAIConfig, data: DataSpec):
        super().__init__(config, data)
        d = config.latent_dim
        self.encoder, self.decoder = conv_autoencoder(config.arch, data, config.hidden, d, d, config.latent_width)
        self.critic = conv_critic(config.arch, data, config.hidden, d, config.latent_width)  # scores: its outputs' mean

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        autoencoder = [*self.encoder.parameters(), *self.decoder.parameters()]
        return {
            "autoencoder": torch.optim.Adam(autoencoder, lr=c.lr, betas=c.betas),
            "critic": torch.optim.Adam(self.critic.parameters(), lr=c.lr, betas=c.betas),
        }

    def score(self, x: Tensor) -> Tensor:
        return self.critic(x).mean(dim=1)  # (B,): the critic's estimate of α

    def losses(self, x: Tensor, alpha: Tensor) -> dict[str, Tensor]:
        """The paper's terms on a batch x and mixing weights α (B,) in [0, 0.5], at the current weights."""
        z = self.encoder(x)  # (B, D)
        x_hat = self.decoder.logits(z)  # linear output (see the module docstring)
        a = alpha[:, None]
        x_mix = self.decoder.logits(a * z + (1 - a) * z.flip(0))  # (B, C, H, W): z₂ is the batch reversed
        mse = (x_hat - x).pow(2).mean()
        with frozen(self.critic):
            fooling = self.score(x_mix).pow(2).mean()
        g = self.config.critic_mix
        critic_alpha = (self.score(x_mix.detach()) - alpha).pow(2).mean()
        critic_real = self.score(g * x + (1 - g) * x_hat.detach()).pow(2).mean()
        return {
            "loss": mse + self.config.adversarial_weight * fooling,
            "mse": mse,
            "fooling": fooling,
            "critic": critic_alpha + critic_real,
            "critic_alpha": critic_alpha,  # the critic's α regression error: low when interpolants give α away
        }

    def training_step(self, batch: Batch, optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, float]:
        x = batch["x"]  # (B, C, H, W)
        alpha = 0.5 - (torch.rand(len(x), device=x.device) - 0.5).abs()  # U[0, 0.5]
        terms = self.losses(x, alpha)
        step_together(self, optimizers, {"autoencoder": terms["loss"], "critic": terms["critic"]})
        return self.logged(terms)

    def encode(self, x: Tensor) -> Tensor:
        return self.encoder(x)  # (B, D)

    def decode(self, z: Tensor) -> Tensor:
        return self.decoder.logits(z).clamp(*self.data.value_range)  # (B, C, H, W), linear output clipped
