"""Deterministic convolutional auto-encoder trained with MSE; samples from a Gaussian fitted to its latents."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import Tensor

from aebench.baselines._wae_nets import Arch, conv_autoencoder
from aebench.model import Batch, DataSpec, Model, ModelConfig
from aebench.registry import models


@dataclass
class AEConfig(ModelConfig):
    latent_dim: int = 8
    hidden: int = 32  # channels of the first conv stage; doubled at each later stage
    # "small": the plain conv nets of _nets.py; "wae-paper": the WAE paper's MNIST nets with batch norm
    # (_wae_nets.py; the paper's widths are hidden = 128)
    arch: Arch = "small"
    latent_width: int = 4  # "acai-paper": the side of the latent map (latent_dim = channels · side²)
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    jitter: float = 1e-6  # added to the latent covariance's diagonal (relative to its mean variance)


@models.register("ae")
class AE(Model):
    name = "ae"
    description = "deterministic conv auto-encoder (MSE, linear output); samples from a Gaussian fit to its latents"
    Config = AEConfig
    capabilities = {"encode", "decode", "reconstruct", "sample"}

    def __init__(self, config: AEConfig, data: DataSpec):
        super().__init__(config, data)
        self.encoder, self.decoder = conv_autoencoder(
            config.arch, data, config.hidden, config.latent_dim, config.latent_dim, config.latent_width
        )
        # The latent Gaussian, in float64; buffers so that state_dict carries the fit. N(0, I) until fitted.
        d = config.latent_dim
        self.register_buffer("prior_mean", torch.zeros(d, dtype=torch.float64))
        self.register_buffer("prior_scale_tril", torch.eye(d, dtype=torch.float64))

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"model": torch.optim.Adam(self.parameters(), lr=self.config.lr, betas=self.config.betas)}

    def training_step(self, batch: Batch, optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, float]:
        x = batch["x"]  # (B, C, H, W)
        # The MSE is taken on the decoder's unsquashed output: through a sigmoid, some seeds push the background
        # pixels into saturation early and stall on an all-black image (measured: 2 of 5 seeds at lr 1e-3).
        loss = (self.training_output(x) - x).pow(2).sum() / len(x)  # summed over pixels
        optimizers["model"].zero_grad(set_to_none=True)
        self.backward(loss)
        optimizers["model"].step()
        value = loss.item()
        return {"loss": value, "mse": value / x[0].numel()}

    def training_output(self, x: Tensor) -> Tensor:
        """The decoder's linear output that the training loss compares with x; variants corrupt the path here."""
        return self.decoder.logits(self.encoder(x))  # (B, C, H, W)

    @torch.no_grad()
    def after_training(self, batches: Iterable[Batch]) -> None:
        """Fit the sampling Gaussian (mean and Cholesky factor of the covariance) to the training latents."""
        was_training = self.training
        self.eval()
        z = torch.cat([self.encode(batch["x"].to(self.device)).double() for batch in batches])  # (N, D)
        self.train(was_training)
        mean = z.mean(dim=0)
        centred = z - mean
        cov = centred.T @ centred / max(len(z) - 1, 1)  # (D, D)
        # A little jitter keeps the factorisation alive when some latent direction is (nearly) unused.
        eye = torch.eye(len(mean), dtype=cov.dtype, device=cov.device)
        cov = cov + self.config.jitter * cov.diagonal().mean().clamp_min(1e-12) * eye
        self.prior_mean.copy_(mean)
        self.prior_scale_tril.copy_(torch.linalg.cholesky(cov))

    def encode(self, x: Tensor) -> Tensor:
        return self.encoder(x)  # (B, D)

    def decode(self, z: Tensor) -> Tensor:
        return self.decoder.logits(z).clamp(*self.data.value_range)  # (B, C, H, W), linear output clipped

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        eps = self.randn(n, self.config.latent_dim, generator=generator).double()  # (n, D)
        z = self.prior_mean + eps @ self.prior_scale_tril.T  # (n, D) ~ N(mean, L Lᵀ)
        return self.decode(z.float())
