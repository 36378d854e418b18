"""pix2pix (Isola et al. 2017): a U-Net generator against a conditional PatchGAN critic, adversarial + λ·L1.

By default it learns both directions, as two independent pix2pix runs would: x → z (translate, the networks
`generator_z`, `critic_z`) and z → x (translate_back, `generator_x`, `critic_x`). `both_directions=False` keeps the
first only. Each critic sees the condition stacked onto the image: (x, z) for the direct path, (z, x) for the
reverse one. Per step the critics are updated first, then the generators against the updated critics.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from aebench.baselines._translation_nets import PatchCritic, UNetGenerator, gan_loss, linear_decay, paired_images
from aebench.errors import AebenchError
from aebench.model import Batch, DataSpec, Model, ModelConfig
from aebench.registry import models


@dataclass
class Pix2PixConfig(ModelConfig):
    hidden_channels: int = 64  # first U-Net level and first critic layer; doubled per level up to 8×
    norm: Literal["batch", "instance", "none"] = "batch"
    dropout: float = 0.5  # in the U-Net's repeated 8×hidden levels (none below 64 px)
    l1_weight: float = 100.0  # λ
    both_directions: bool = True  # False: x → z only, and translate_back raises
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    decay_from: float = 0.5  # constant learning rate for this fraction of the steps, then linearly to 0


@models.register("pix2pix")
class Pix2Pix(Model):
    name = "pix2pix"
    description = "pix2pix: U-Net generator, conditional 70×70 PatchGAN, vanilla GAN + 100·L1; one per direction"
    Config = Pix2PixConfig
    capabilities = {"translate", "translate_back"}

    def __init__(self, config: Pix2PixConfig, data: DataSpec):
        super().__init__(config, data)
        c_x, c_z, h, w = paired_images(data, "pix2pix")
        hidden, norm = config.hidden_channels, config.norm
        self.generator_z = UNetGenerator(c_x, c_z, h, w, hidden, norm, config.dropout, data.value_range)
        self.critic_z = PatchCritic(c_x + c_z, hidden, norm, h, w)
        if config.both_directions:
            self.generator_x = UNetGenerator(c_z, c_x, h, w, hidden, norm, config.dropout, data.value_range)
            self.critic_x = PatchCritic(c_z + c_x, hidden, norm, h, w)

    def paths(self) -> list[tuple[str, nn.Module, nn.Module]]:
        """(output domain, generator, critic) of each direction learnt."""
        paths = [("z", self.generator_z, self.critic_z)]
        if self.config.both_directions:
            paths.append(("x", self.generator_x, self.critic_x))
        return paths

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        generators = [p for _, g, _ in self.paths() for p in g.parameters()]
        critics = [p for _, _, c in self.paths() for p in c.parameters()]
        # foreach: one multi-tensor update per optimizer; the same numbers as the per-tensor loop, torch's CPU default
        adam = dict(lr=self.config.lr, betas=self.config.betas, foreach=True)
        return {"generator": torch.optim.Adam(generators, **adam), "critic": torch.optim.Adam(critics, **adam)}

    def configure_schedulers(self, optimizers, total_steps):
        return linear_decay(optimizers, total_steps, self.config.decay_from)

    def training_step(self, batch: Batch, optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, float]:
        source = {"z": batch["x"], "x": batch["z"]}  # the condition of each output domain
        target = {"z": batch["z"], "x": batch["x"]}
        fakes = {out: generator(source[out]) for out, generator, _ in self.paths()}
        logs: dict[str, Tensor] = {}

        # Critics: real pairs against generated ones.
        critic_loss = 0.0
        for out, _, critic in self.paths():
            real = critic(torch.cat([source[out], target[out]], 1))
            fake = critic(torch.cat([source[out], fakes[out].detach()], 1))
            logs[f"critic_{out}"] = 0.5 * (gan_loss(real, True, "vanilla") + gan_loss(fake, False, "vanilla"))
            critic_loss = critic_loss + logs[f"critic_{out}"]
        optimizers["critic"].zero_grad(set_to_none=True)
        self.backward(critic_loss)
        optimizers["critic"].step()

        # Generators: fool the updated critics, stay close to the target in L1.
        critics = [c for _, _, c in self.paths()]
        for critic in critics:
            critic.requires_grad_(False)
        generator_loss = 0.0
        for out, _, critic in self.paths():
            logs[f"gan_{out}"] = gan_loss(critic(torch.cat([source[out], fakes[out]], 1)), True, "vanilla")
            logs[f"l1_{out}"] = (fakes[out] - target[out]).abs().mean()
            generator_loss = generator_loss + logs[f"gan_{out}"] + self.config.l1_weight * logs[f"l1_{out}"]
        optimizers["generator"].zero_grad(set_to_none=True)
        self.backward(generator_loss)
        optimizers["generator"].step()
        for critic in critics:
            critic.requires_grad_(True)

        logs["generator"] = generator_loss
        return self.logged(logs)

    def translate(self, x: Tensor) -> Tensor:
        return self.generator_z(x)  # (B, C_z, H, W)

    def translate_back(self, z: Tensor) -> Tensor:
        if not self.config.both_directions:
            raise AebenchError("pix2pix was trained with both_directions=False: it has no z → x generator")
        return self.generator_x(z)  # (B, C_x, H, W)
