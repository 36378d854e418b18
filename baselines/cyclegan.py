"""CycleGAN (Zhu et al. 2017): two ResNet generators and two PatchGAN critics, LSGAN, cycle and identity L1.

`generator_z` maps x → z (translate) and `generator_x` maps z → x (translate_back); `critic_z` judges z-domain
images, `critic_x` x-domain ones, each on fakes drawn through a 50-image pool. The pairing of the batch is never
used. Per step the generators are updated first, then the critics, as in the reference code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from aebench.baselines._translation_nets import (
    ImagePool,
    PatchCritic,
    ResnetGenerator,
    gan_loss,
    linear_decay,
    paired_images,
)
from aebench.errors import AebenchError
from aebench.model import Batch, DataSpec, Model, ModelConfig
from aebench.registry import models


@dataclass
class CycleGANConfig(ModelConfig):
    hidden_channels: int = 64  # generator's first stage and critic's first layer
    n_blocks: int = 9  # residual blocks (resnet_9blocks)
    norm: Literal["batch", "instance", "none"] = "instance"
    dropout: float = 0.0  # in the residual blocks (the paper uses none)
    cycle_weight: float = 10.0  # λ of both cycle terms
    identity_weight: float = 0.5  # × cycle_weight; needs as many channels in x as in z
    pool_size: int = 50
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    decay_from: float = 0.5  # constant learning rate for this fraction of the steps, then linearly to 0


@models.register("cyclegan")
class CycleGAN(Model):
    name = "cyclegan"
    description = "CycleGAN: ResNet generators, 70×70 PatchGANs, LSGAN + 10·cycle L1 + 0.5·identity, image pool 50"
    Config = CycleGANConfig
    capabilities = {"translate", "translate_back"}

    def __init__(self, config: CycleGANConfig, data: DataSpec):
        super().__init__(config, data)
        c_x, c_z, h, w = paired_images(data, "cyclegan")
        if config.identity_weight > 0 and c_x != c_z:
            raise AebenchError(f"cyclegan: the identity term needs as many channels in x as in z ({c_x} ≠ {c_z})")
        hidden, norm, blocks, dropout = config.hidden_channels, config.norm, config.n_blocks, config.dropout
        self.generator_z = ResnetGenerator(c_x, c_z, h, w, hidden, blocks, norm, dropout, data.value_range)
        self.generator_x = ResnetGenerator(c_z, c_x, h, w, hidden, blocks, norm, dropout, data.value_range)
        self.critic_z = PatchCritic(c_z, hidden, norm, h, w)
        self.critic_x = PatchCritic(c_x, hidden, norm, h, w)
        self.pool_z = ImagePool(config.pool_size)
        self.pool_x = ImagePool(config.pool_size)

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        generators = [*self.generator_z.parameters(), *self.generator_x.parameters()]
        critics = [*self.critic_z.parameters(), *self.critic_x.parameters()]
        # foreach: one multi-tensor update per optimizer; the same numbers as the per-tensor loop, torch's CPU default
        adam = dict(lr=self.config.lr, betas=self.config.betas, foreach=True)
        return {"generator": torch.optim.Adam(generators, **adam), "critic": torch.optim.Adam(critics, **adam)}

    def configure_schedulers(self, optimizers, total_steps):
        return linear_decay(optimizers, total_steps, self.config.decay_from)

    def training_step(self, batch: Batch, optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, float]:
        x, z = batch["x"], batch["z"]
        cycle, identity = self.config.cycle_weight, self.config.identity_weight * self.config.cycle_weight
        fake_z = self.generator_z(x)
        cycle_x = self.generator_x(fake_z)
        fake_x = self.generator_x(z)
        cycle_z = self.generator_z(fake_x)
        logs: dict[str, Tensor] = {}

        # Generators, with the critics frozen.
        critics = (self.critic_z, self.critic_x)
        for critic in critics:
            critic.requires_grad_(False)
        generator_loss = 0.0
        if identity > 0:
            logs["identity_z"] = (self.generator_z(z) - z).abs().mean()
            logs["identity_x"] = (self.generator_x(x) - x).abs().mean()
            generator_loss = identity * (logs["identity_z"] + logs["identity_x"])
        logs["gan_z"] = gan_loss(self.critic_z(fake_z), True, "lsgan")
        logs["gan_x"] = gan_loss(self.critic_x(fake_x), True, "lsgan")
        logs["cycle_x"] = (cycle_x - x).abs().mean()
        logs["cycle_z"] = (cycle_z - z).abs().mean()
        generator_loss = generator_loss + logs["gan_z"] + logs["gan_x"] + cycle * (logs["cycle_x"] + logs["cycle_z"])
        optimizers["generator"].zero_grad(set_to_none=True)
        self.backward(generator_loss)
        optimizers["generator"].step()
        for critic in critics:
            critic.requires_grad_(True)

        # Critics: real images against (pooled) fakes.
        for name, critic, pool, real, fake in (
            ("critic_z", self.critic_z, self.pool_z, z, fake_z),
            ("critic_x", self.critic_x, self.pool_x, x, fake_x),
        ):
            logs[name] = 0.5 * (gan_loss(critic(real), True, "lsgan") + gan_loss(critic(pool(fake)), False, "lsgan"))
        optimizers["critic"].zero_grad(set_to_none=True)
        self.backward(logs["critic_z"] + logs["critic_x"])
        optimizers["critic"].step()

        logs["generator"] = generator_loss
        return self.logged(logs)

    def translate(self, x: Tensor) -> Tensor:
        return self.generator_z(x)  # (B, C_z, H, W)

    def translate_back(self, z: Tensor) -> Tensor:
        return self.generator_x(z)  # (B, C_x, H, W)
