"""Adversarial auto-encoder (Makhzani et al. 2016, "Adversarial Autoencoders", arXiv:1511.05644): a deterministic
encoder and decoder, and a discriminator on the latent space that tells the encoder's codes z = E(x) from draws of
the N(0, I) prior; the encoder is also trained to fool it, which matches the aggregate posterior q(z) to the prior.

    discriminator:  −log σ(D(z_prior)) − log(1 − σ(D(z)))        (z detached)
    auto-encoder:   ‖x − G(z)‖² (mean per pixel)  +  λ · −log σ(D(z))       (non-saturating; D frozen)

Two schedules (`schedule`):
- "joint" (default; what produced the ACAI paper's AAE rows): both losses are taken at the same weights and both
  nets step once per batch with Adam, as the ACAI authors' AAE (github.com/brain-research/acai, aae.py: per-pixel
  MSE + the non-saturating term with weight 1; one learning rate for all nets, 1e-4 there, the suite's 1e-3 here
  as its other auto-encoders).
- "phases": the AAE paper's (section 2.1): on every minibatch a reconstruction step of encoder and decoder, then a
  discriminator step, then a regularisation step of the encoder as D's generator, each with its own optimiser
  (Adam here; the paper used SGD with momentum). The two terms never share one Adam step, so the per-pixel MSE's
  small scale cannot be swamped by the adversarial term; measured on latent-mnist's nets at lr 1e-3 (600 steps),
  "joint" does not reconstruct (test MSE 0.27–0.37, a grey blob), as the aae rows of the `quick` tables show, and
  "phases" does (0.065, falling; 0.037 with no adversarial term at all).

The paper's MNIST discriminator has two hidden layers of 1000 ReLU units (`hidden_units`; the ACAI authors' has two
of 100 leaky ReLU units). Samples decode prior draws, so no latent Gaussian is fitted after training.

The decoder's output is linear, as the ACAI authors' and as the suite's `ae` and `acai`: the MSE takes its unsquashed
output and `decode` clips it into the data range. Through the range squash (tanh for [−1, 1] lines) the background
pixels saturate early and training stalls on the blank image: measured on the lines with the authors' nets at lr
1e-4, test MSE 0.0889 (the blank image's) after 800 steps even without the adversarial term, against 0.086 (aae)
and 0.081 (ae) with the linear output.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from aebench.baselines._dcgan import bce, frozen, step_together
from aebench.baselines._translation_nets import MLP
from aebench.baselines._wae_nets import Arch, conv_autoencoder
from aebench.model import Batch, DataSpec, Model, ModelConfig
from aebench.registry import models


@dataclass
class AAEConfig(ModelConfig):
    latent_dim: int = 8
    hidden: int = 32  # channels of the first conv stage; doubled at each later stage
    # "small": the plain conv nets of _nets.py; "wae-paper": the WAE paper's MNIST nets with batch norm
    arch: Arch = "small"
    latent_width: int = 4  # "acai-paper": the side of the latent map (latent_dim = channels · side²)
    hidden_units: int = 1000  # the discriminator's two hidden layers (the paper's MNIST widths)
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    adversarial_weight: float = 1.0  # λ
    schedule: Literal["joint", "phases"] = "joint"  # the ACAI authors' or the AAE paper's: the module docstring


@models.register("aae")
class AAE(Model):
    name = "aae"
    description = "adversarial auto-encoder: conv encoder/decoder, MLP latent discriminator matching q(z) to N(0, I)"
    Config = AAEConfig
    capabilities = {"encode", "decode", "reconstruct", "sample"}

    def __init__(self, config: AAEConfig, data: DataSpec):
        super().__init__(config, data)
        d = config.latent_dim
        self.encoder, self.decoder = conv_autoencoder(config.arch, data, config.hidden, d, d, config.latent_width)
        self.discriminator = MLP(d, [config.hidden_units] * 2, 1)  # (B, D) → (B, 1) logits: prior vs code

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        autoencoder = [*self.encoder.parameters(), *self.decoder.parameters()]
        optimizers = {
            "autoencoder": torch.optim.Adam(autoencoder, lr=c.lr, betas=c.betas),
            "discriminator": torch.optim.Adam(self.discriminator.parameters(), lr=c.lr, betas=c.betas),
        }
        if c.schedule == "phases":  # the regularisation phase: the encoder alone, as D's generator
            optimizers["generator"] = torch.optim.Adam(self.encoder.parameters(), lr=c.lr, betas=c.betas)
        return optimizers

    def losses(self, x: Tensor, prior: Tensor) -> dict[str, Tensor]:
        """The paper's terms on a batch x and prior draws (B, D), at the current weights."""
        z = self.encoder(x)  # (B, D)
        mse = (self.decoder.logits(z) - x).pow(2).mean()  # linear output (see the module docstring)
        d_loss = bce(self.discriminator(prior), True) + bce(self.discriminator(z.detach()), False)
        with frozen(self.discriminator):
            adversarial = bce(self.discriminator(z), True)  # non-saturating: the encoder wants "prior"
        loss = mse + self.config.adversarial_weight * adversarial
        return {"loss": loss, "mse": mse, "adversarial": adversarial, "d_loss": d_loss}

    def training_step(self, batch: Batch, optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, float]:
        x = batch["x"]  # (B, C, H, W)
        prior = torch.randn(len(x), self.config.latent_dim, device=x.device)
        if self.config.schedule == "joint":
            terms = self.losses(x, prior)
            step_together(self, optimizers, {"autoencoder": terms["loss"], "discriminator": terms["d_loss"]})
            return self.logged(terms)
        mse = (self.decoder.logits(self.encoder(x)) - x).pow(2).mean()  # reconstruction phase
        self._step(optimizers["autoencoder"], mse)
        z = self.encoder(x)  # regularisation phase: D on the updated encoder's codes, then E against the updated D
        d_loss = bce(self.discriminator(prior), True) + bce(self.discriminator(z.detach()), False)
        self._step(optimizers["discriminator"], d_loss)
        with frozen(self.discriminator):
            adversarial = bce(self.discriminator(z), True)
        self._step(optimizers["generator"], self.config.adversarial_weight * adversarial)
        loss = mse.detach() + self.config.adversarial_weight * adversarial.detach()
        return self.logged({"loss": loss, "mse": mse, "adversarial": adversarial, "d_loss": d_loss})

    def _step(self, optimizer: torch.optim.Optimizer, loss: Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        self.backward(loss)
        optimizer.step()

    def encode(self, x: Tensor) -> Tensor:
        return self.encoder(x)  # (B, D)

    def decode(self, z: Tensor) -> Tensor:
        return self.decoder.logits(z).clamp(*self.data.value_range)  # (B, C, H, W), linear output clipped

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return self.decode(self.randn(n, self.config.latent_dim, generator=generator))
