"""Denoising auto-encoder, the "Denoising" column of the ACAI paper's tables (Berthelot et al. 2019; the authors'
denoising.py): the ae whose encoder sees x + σ·N(0, I) during training while the loss compares the decoding with the
clean x. Everything else (nets, optimiser, the sampling Gaussian, clean encoding at test time) is the ae's.

σ is given in units of half the data's value range: the authors' `noise` 1.0 on their [−1, 1] images is σ = 1 here,
and the same σ adds noise of standard deviation 0.5 to [0, 1] data.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from aebench.baselines.ae import AE, AEConfig
from aebench.registry import models


@dataclass
class DenoisingAEConfig(AEConfig):
    noise: float = 1.0  # σ of the input noise, in half value ranges (the authors' flag `noise`)

    def __post_init__(self) -> None:
        if self.noise < 0:
            raise ValueError(f"noise must be ≥ 0, got {self.noise}")


@models.register("ae-denoising")
class DenoisingAE(AE):
    name = "ae-denoising"
    description = "the ae trained to reconstruct clean x from x + σ·N(0, I) (ACAI paper's denoising baseline)"
    Config = DenoisingAEConfig

    def training_output(self, x: Tensor) -> Tensor:
        low, high = self.data.value_range
        noisy = x + self.config.noise * (high - low) / 2 * self.randn(*x.shape)  # (B, C, H, W)
        return self.decoder.logits(self.encoder(noisy))
