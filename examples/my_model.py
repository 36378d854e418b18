"""An outside model, kept in the user's own file: aebench runs it without any change to the package.

    aebench run --task mnist-sharpness --models ./examples/my_model.py:MLPAutoencoder,vae

It follows the same interface as the baselines (aebench.model.Model): a typed config, declared capabilities,
its optimizers and one training step. This one is a small fully-connected auto-encoder that samples from a
Gaussian fitted to its training latents.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from aebench.model import Batch, DataSpec, Model, ModelConfig


@dataclass
class MLPConfig(ModelConfig):
    latent_dim: int = 8  # the task may set it (mnist-sharpness uses 8)
    width: int = 256
    lr: float = 1e-3


class MLPAutoencoder(Model):
    name = "mlp-ae"  # the name in records and leaderboards
    description = "fully-connected auto-encoder; samples from a Gaussian fit of its training latents"
    Config = MLPConfig
    capabilities = {"encode", "decode", "reconstruct", "sample"}

    def __init__(self, config: MLPConfig, data: DataSpec):
        super().__init__(config, data)
        size = int(torch.tensor(data.shape).prod())
        self.encoder = nn.Sequential(
            nn.Flatten(), nn.Linear(size, config.width), nn.ReLU(), nn.Linear(config.width, config.latent_dim)
        )
        self.decoder = nn.Sequential(
            nn.Linear(config.latent_dim, config.width),
            nn.ReLU(),
            nn.Linear(config.width, size),
            nn.Sigmoid(),
            nn.Unflatten(1, data.shape),
        )
        self.register_buffer("latent_mean", torch.zeros(config.latent_dim))
        self.register_buffer("latent_scale", torch.ones(config.latent_dim))

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"model": torch.optim.Adam(self.parameters(), lr=self.config.lr)}

    def training_step(self, batch: Batch, optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, float]:
        x = batch["x"]  # (B, 1, 28, 28)
        loss = (self.reconstruct(x) - x).pow(2).mean()
        optimizers["model"].zero_grad()
        loss.backward()
        optimizers["model"].step()
        return {"mse": loss.item()}

    def after_training(self, batches) -> None:
        z = torch.cat([self.encode(batch["x"]) for batch in batches])  # (N, latent_dim)
        self.latent_mean.copy_(z.mean(0))
        self.latent_scale.copy_(z.std(0))

    def encode(self, x: Tensor) -> Tensor:
        return self.encoder(x)

    def decode(self, z: Tensor) -> Tensor:
        return self.decoder(z)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        z = self.randn(n, self.config.latent_dim, generator=generator)
        return self.decode(self.latent_mean + self.latent_scale * z)
