"""WGAN-div (Wu et al. 2018): a Wasserstein-divergence GAN whose critic is regularised by (k/2)·E[‖∇D‖₂^p] on
real and on fake images, k = 2, p = 6; no Lipschitz constraint and no interpolates.

The penalty is (k/2)·(E_real[‖∇D‖^p] + E_fake[‖∇D‖^p]), i.e. k·E over the 50/50 mixture of real and fake that the
paper's E_u[‖∇D‖^p] samples (and its authors' code). DCGAN generator; critic, n_critic and the reuse of the step's
real batch as in wgan_gp.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from aebench.baselines._dcgan import Discriminator, Generator, from_unit, frozen, to_unit
from aebench.model import Batch, DataSpec, Model, ModelConfig
from aebench.registry import models


@dataclass
class WGANDivConfig(ModelConfig):
    latent_dim: int = 100
    hidden_channels: int = 64  # channels of the largest feature map; doubled per halving, capped at 8×
    # The WGAN-GP recipe's Adam, lr 1e-4, betas (0, 0.9), as wgan-gp. The notes' Adam for all GANs, 2e-4 (0.5, 0.999),
    # is `--model-args wgan-div.lr=2e-4 wgan-div.betas=0.5,0.999`: with it the critic flattened on the galaxies
    # (penalty 1.5e-9, Wasserstein estimate -0.08 after 1,000 quick steps).
    lr: float = 1e-4
    betas: tuple[float, float] = (0.0, 0.9)
    n_critic: int = 5  # critic updates per generator update
    k: float = 2.0
    p: float = 6.0
    critic_norm: Literal["layer", "none"] = "layer"

    def __post_init__(self) -> None:
        if self.latent_dim < 1 or self.hidden_channels < 1 or self.n_critic < 1 or self.lr <= 0:
            raise ValueError("latent_dim, hidden_channels and n_critic must be ≥ 1 and lr positive")
        if self.k < 0 or self.p < 1:
            raise ValueError(f"k must be ≥ 0 and p ≥ 1, got k={self.k}, p={self.p}")


@models.register("wgan-div")
class WGANDiv(Model):
    name = "wgan-div"
    description = (
        "WGAN-div: DCGAN generator, layer-normalised critic, (k/2)E|grad D|^p on real and fake, 5 critic steps"
    )
    Config = WGANDivConfig
    capabilities = {"sample"}
    # Off: in bf16 the gradient norms keep ~3 significant digits, ‖∇D‖^6 multiplies their error by 6.
    supports_amp = False

    def __init__(self, config: WGANDivConfig, data: DataSpec):
        super().__init__(config, data)
        self.generator = Generator(data, config.latent_dim, config.hidden_channels)
        self.critic: nn.Module = Discriminator(data, config.hidden_channels, norm=config.critic_norm)

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        return {
            "generator": torch.optim.Adam(self.generator.parameters(), lr=c.lr, betas=c.betas),
            "critic": torch.optim.Adam(self.critic.parameters(), lr=c.lr, betas=c.betas),
        }

    def critic_loss(self, real: Tensor, fake: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """E[D(fake)] − E[D(real)] + penalty, with the penalty and the estimate E[D(real)] − E[D(fake)].

        real, fake: (B, C, H, W) in [-1, 1], the scale the papers' k and p were tuned on.
        """
        x = torch.cat([real.detach(), fake.detach()]).requires_grad_(True)  # (2B, C, H, W)
        scores = self.critic(x)  # (2B, 1); no BatchNorm, so each score depends on its own image only
        (grad,) = torch.autograd.grad(scores.sum(), x, create_graph=True)  # (2B, C, H, W): ∇D at each image
        norms_p = grad.flatten(1).pow(2).sum(dim=1).pow(self.config.p / 2)  # ‖∇D‖^p, smooth at 0
        real_scores, fake_scores = scores.chunk(2)
        grad_real, grad_fake = norms_p.chunk(2)
        penalty = self.config.k / 2 * (grad_real.mean() + grad_fake.mean())
        wasserstein = real_scores.mean() - fake_scores.mean()
        return penalty - wasserstein, penalty, wasserstein

    def training_step(self, batch: Batch, optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, float]:
        real = to_unit(batch["x"], self.data)  # (B, C, H, W) in [-1, 1]
        n = len(real)
        for _ in range(self.config.n_critic):
            with torch.no_grad():
                fake = self.generator(self.randn(n, self.config.latent_dim))  # (B, C, H, W)
            d_loss, penalty, wasserstein = self.critic_loss(real, fake)
            optimizers["critic"].zero_grad(set_to_none=True)
            self.backward(d_loss)  # outside the runner's autocast
            optimizers["critic"].step()
        with frozen(self.critic):
            g_loss = -self.critic(self.generator(self.randn(n, self.config.latent_dim))).mean()
        optimizers["generator"].zero_grad(set_to_none=True)
        self.backward(g_loss)  # outside the runner's autocast
        optimizers["generator"].step()
        # the critic's values of its last update
        return self.logged({"d_loss": d_loss, "g_loss": g_loss, "penalty": penalty, "wasserstein": wasserstein})

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return from_unit(self.generator(self.randn(n, self.config.latent_dim, generator=generator)), self.data)
