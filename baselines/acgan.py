"""AC-GAN (Odena, Olah & Shlens 2017): a class-conditional DCGAN whose discriminator also predicts the class.

The generator reads [z, one-hot(c)]; the discriminator's last layer gives one real/fake logit and n_classes class
logits. D maximises log-likelihood of the source (real/fake) and of the class on real and fake images; G minimises
the source term (non-saturating) and maximises the class term of its own images.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from aebench.baselines._dcgan import Discriminator, Generator, bce, from_unit, frozen, to_unit
from aebench.errors import AebenchError
from aebench.model import Batch, DataSpec, Model, ModelConfig
from aebench.registry import models


@dataclass
class ACGANConfig(ModelConfig):
    latent_dim: int = 100
    hidden_channels: int = 64  # channels of the largest feature map; doubled per halving, capped at 8×
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    n_critic: int = 1  # discriminator updates per generator update, each on the step's batch with fresh noise
    class_weight: float = 1.0  # weight of the auxiliary classification loss in both players' objectives

    def __post_init__(self) -> None:
        if self.latent_dim < 1 or self.hidden_channels < 1 or self.n_critic < 1 or self.lr <= 0:
            raise ValueError("latent_dim, hidden_channels and n_critic must be ≥ 1 and lr positive")
        if self.class_weight < 0:
            raise ValueError(f"class_weight must be ≥ 0, got {self.class_weight}")


@models.register("acgan")
class ACGAN(Model):
    name = "acgan"
    description = "AC-GAN: class-conditional DCGAN generator, discriminator with an auxiliary classifier head"
    Config = ACGANConfig
    capabilities = {"sample"}

    def __init__(self, config: ACGANConfig, data: DataSpec):
        super().__init__(config, data)
        if data.n_classes is None or data.n_classes < 2:
            raise AebenchError(f"acgan needs class labels (DataSpec.n_classes ≥ 2), got n_classes={data.n_classes}")
        self.n_classes = data.n_classes
        self.generator = Generator(data, config.latent_dim + self.n_classes, config.hidden_channels)
        self.discriminator = Discriminator(data, config.hidden_channels, 1 + self.n_classes, norm="batch")

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        return {
            "generator": torch.optim.Adam(self.generator.parameters(), lr=c.lr, betas=c.betas),
            "discriminator": torch.optim.Adam(self.discriminator.parameters(), lr=c.lr, betas=c.betas),
        }

    def generate(self, z: Tensor, labels: Tensor) -> Tensor:
        """(B, latent_dim), (B,) int64 → (B, C, H, W)."""
        return self.generator(torch.cat([z, F.one_hot(labels, self.n_classes).to(z.dtype)], dim=1))

    def training_step(self, batch: Batch, optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, float]:
        if "y" not in batch:
            raise AebenchError("acgan needs class labels: batches must carry 'y'")
        real, labels = to_unit(batch["x"], self.data), batch["y"]  # (B, C, H, W) in [-1, 1], (B,)
        n, w = len(real), self.config.class_weight
        for _ in range(self.config.n_critic):
            fake_labels = torch.randint(0, self.n_classes, (n,), device=self.device)
            fake = self.generate(self.randn(n, self.config.latent_dim), fake_labels)  # (B, C, H, W)
            real_out, fake_out = self.discriminator(real), self.discriminator(fake.detach())  # (B, 1 + K) each
            source = bce(real_out[:, :1], True) + bce(fake_out[:, :1], False)
            classes = F.cross_entropy(real_out[:, 1:], labels) + F.cross_entropy(fake_out[:, 1:], fake_labels)
            d_loss = source + w * classes
            optimizers["discriminator"].zero_grad(set_to_none=True)
            self.backward(d_loss)  # outside the runner's autocast
            optimizers["discriminator"].step()
        with frozen(self.discriminator):  # the generator step reuses the last fakes against the updated D
            out = self.discriminator(fake)
            g_source, g_classes = bce(out[:, :1], True), F.cross_entropy(out[:, 1:], fake_labels)
        g_loss = g_source + w * g_classes
        optimizers["generator"].zero_grad(set_to_none=True)
        self.backward(g_loss)  # outside the runner's autocast
        optimizers["generator"].step()
        accuracy = (real_out[:, 1:].argmax(dim=1) == labels).float().mean()  # D's class accuracy on real images
        terms = {"d_loss": d_loss, "g_loss": g_loss, "d_class": classes, "g_class": g_classes, "d_accuracy": accuracy}
        return self.logged(terms)

    def sample_class(self, labels: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Images of the given classes, (n,) int64 → (n, C, H, W); noise reproducible from the CPU `generator`."""
        labels = torch.as_tensor(labels)
        if labels.ndim != 1 or labels.dtype.is_floating_point or labels.dtype == torch.bool:
            raise AebenchError(
                f"sample_class needs a 1-D integer tensor of labels, got {labels.dtype} {tuple(labels.shape)}"
            )
        if len(labels) and (labels.min() < 0 or labels.max() >= self.n_classes):
            raise AebenchError(f"sample_class: labels must lie in 0..{self.n_classes - 1}")
        z = self.randn(len(labels), self.config.latent_dim, generator=generator)
        return from_unit(self.generate(z, labels.to(self.device, torch.int64)), self.data)  # (n, C, H, W)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n images of classes drawn uniformly (from `generator`, then the noise)."""
        labels = torch.randint(0, self.n_classes, (n,), generator=generator)
        return self.sample_class(labels, generator)
