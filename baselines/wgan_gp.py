"""WGAN-GP (Gulrajani et al. 2017): a Wasserstein GAN whose critic's Lipschitz constraint is a gradient penalty
λ·E[(‖∇D(x̂)‖₂ − 1)²] at random interpolates x̂ = α·real + (1 − α)·fake, α ~ U(0, 1) per sample.

DCGAN generator; DCGAN critic without BatchNorm (it would couple the samples whose gradients are penalised) but with
layer normalisation, as the paper recommends. Each training step makes n_critic critic updates, all on the step's
batch of real images, each with fresh noise and fresh α, then one generator update on fresh noise: the critic sees
the runner's batch size as in the paper, at the cost of reusing each real batch n_critic times.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from aebench.baselines._dcgan import Discriminator, Generator, from_unit, frozen, interpolation_shape, to_unit
from aebench.model import Batch, DataSpec, Model, ModelConfig
from aebench.registry import models


@dataclass
class WGANGPConfig(ModelConfig):
    latent_dim: int = 100
    hidden_channels: int = 64  # channels of the largest feature map; doubled per halving, capped at 8×
    # The WGAN-GP paper's Adam (Gulrajani et al. 2017, Alg. 1 and their gan_64x64.py): lr 1e-4, betas (0, 0.9). The
    # notes' Adam for all GANs, 2e-4 (0.5, 0.999), is `--model-args wgan-gp.lr=2e-4 wgan-gp.betas=0.5,0.999`.
    lr: float = 1e-4
    betas: tuple[float, float] = (0.0, 0.9)
    n_critic: int = 5  # critic updates per generator update
    gp_weight: float = 10.0  # λ
    critic_norm: Literal["layer", "none"] = "layer"

    def __post_init__(self) -> None:
        if self.latent_dim < 1 or self.hidden_channels < 1 or self.n_critic < 1 or self.lr <= 0:
            raise ValueError("latent_dim, hidden_channels and n_critic must be ≥ 1 and lr positive")
        if self.gp_weight < 0:
            raise ValueError(f"gp_weight must be ≥ 0, got {self.gp_weight}")


@models.register("wgan-gp")
class WGANGP(Model):
    name = "wgan-gp"
    description = (
        "WGAN-GP: DCGAN generator, layer-normalised critic, gradient penalty 10 on interpolates, 5 critic steps"
    )
    Config = WGANGPConfig
    capabilities = {"sample"}
    # Off: in bf16 the penalty's gradient norms keep ~3 significant digits, and its double backward is untested here.
    supports_amp = False

    def __init__(self, config: WGANGPConfig, data: DataSpec):
        super().__init__(config, data)
        self.generator = Generator(data, config.latent_dim, config.hidden_channels)
        self.critic: nn.Module = Discriminator(data, config.hidden_channels, norm=config.critic_norm)

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        return {
            "generator": torch.optim.Adam(self.generator.parameters(), lr=c.lr, betas=c.betas),
            "critic": torch.optim.Adam(self.critic.parameters(), lr=c.lr, betas=c.betas),
        }

    def critic_loss(self, real: Tensor, fake: Tensor, alpha: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """E[D(fake)] − E[D(real)] + λ·GP, with the penalty λ·GP and the Wasserstein estimate E[D(real)] − E[D(fake)].

        real, fake: (B, C, H, W) in [-1, 1]; alpha: (B, 1, 1, 1) interpolation weights in [0, 1].
        """
        real_scores, fake_scores = self.critic(torch.cat([real, fake])).chunk(2)  # (B, 1) each; no BatchNorm
        wasserstein = real_scores.mean() - fake_scores.mean()
        penalty = self.config.gp_weight * gradient_penalty(self.critic, real, fake, alpha)
        return penalty - wasserstein, penalty, wasserstein

    def training_step(self, batch: Batch, optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, float]:
        real = to_unit(batch["x"], self.data)  # (B, C, H, W) in [-1, 1]
        n = len(real)
        for _ in range(self.config.n_critic):
            with torch.no_grad():
                fake = self.generator(self.randn(n, self.config.latent_dim))  # (B, C, H, W)
            alpha = torch.rand(interpolation_shape(self.data, n), device=real.device)  # one α per sample
            d_loss, penalty, wasserstein = self.critic_loss(real, fake, alpha)
            optimizers["critic"].zero_grad(set_to_none=True)
            self.backward(d_loss)  # outside the runner's autocast
            optimizers["critic"].step()
        with frozen(self.critic):
            g_loss = -self.critic(self.generator(self.randn(n, self.config.latent_dim))).mean()
        optimizers["generator"].zero_grad(set_to_none=True)
        self.backward(g_loss)  # outside the runner's autocast
        optimizers["generator"].step()
        # the critic's values of its last update
        return self.logged({"d_loss": d_loss, "g_loss": g_loss, "gp": penalty, "wasserstein": wasserstein})

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return from_unit(self.generator(self.randn(n, self.config.latent_dim, generator=generator)), self.data)


def gradient_penalty(critic: nn.Module, real: Tensor, fake: Tensor, alpha: Tensor) -> Tensor:
    """E[(‖∇ₓD(x̂)‖₂ − 1)²] at x̂ = α·real + (1 − α)·fake; x is D's input (the models pass images in [-1, 1])."""
    x = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)  # per-sample: the critic mixes no samples
    return (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()
