"""TURBO (Quétant et al., Entropy 2023): a two-way auto-encoder trained on the direct and the reverse path at once.

Encoder E: x → z (translate) and decoder D: z → x (translate_back). Direct path x → z̃ = E(x) → x̂ = D(z̃), reverse
path z → x̃ = D(z) → ẑ = E(x̃). Each of the four terms has a distance part and a critic (divergence) part:

    L = Σ_t  t_dist · d(t, target)  +  t_adv · GAN(critic_t(t))      t ∈ {z̃ → z, x̂ → x, x̃ → x, ẑ → z}

plus CycleGAN's identity terms d(E(z), z), d(D(x), x). A term with weight 0 is neither computed nor given a critic.
The defaults are the Hubble-to-Webb TURBO (ResNet generators, four PatchGAN critics, LSGAN, cycle L1 10, identity
0.5, image pool 50, paired "estimation" L1 10); `preset` switches terms on and off to give pix2pix, CycleGAN, an AAE
or a GAN (tests/test_translation_baselines.py checks they equal those models). Vectors use MLPs (see turbo-sim).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn

from aebench.baselines._translation_nets import (
    MLP,
    ImagePool,
    PatchCritic,
    ResnetGenerator,
    UNetGenerator,
    distance,
    gan_loss,
    linear_decay,
    paired_images,
)
from aebench.baselines.wgan_gp import gradient_penalty
from aebench.errors import AebenchError
from aebench.model import Batch, DataSpec, Model, ModelConfig
from aebench.registry import models

TERMS = ("z_tilde", "x_hat", "x_tilde", "z_hat")
TARGET = {"z_tilde": "z", "x_hat": "x", "x_tilde": "x", "z_hat": "z"}  # the domain a term lives in
CONDITION = {"z_tilde": "x", "x_tilde": "z"}  # what a conditional critic sees next to a paired estimate

_OFF = {f"{t}_{part}": 0.0 for t in TERMS for part in ("dist", "adv")}
PRESETS: dict[str, dict[str, Any]] = {
    # Both directions of pix2pix: paired L1 ·100 + vanilla GAN with conditional critics on z̃ and x̃.
    "pix2pix": {
        **_OFF, "z_tilde_dist": 100.0, "z_tilde_adv": 1.0, "x_tilde_dist": 100.0, "x_tilde_adv": 1.0,
        "generator": "unet", "norm": "batch", "dropout": 0.5, "gan_mode": "vanilla", "distance": "l1",
        "identity": 0.0, "conditional_critics": True, "critics_first": True, "pool_size": 0,
    },
    # CycleGAN: LSGAN on z̃ and x̃, cycle L1 ·10 on x̂ and ẑ, identity 0.5, pool 50; no paired term.
    "cyclegan": {
        **_OFF, "z_tilde_adv": 1.0, "x_hat_dist": 10.0, "x_tilde_adv": 1.0, "z_hat_dist": 10.0,
        "generator": "resnet", "norm": "instance", "dropout": 0.0, "gan_mode": "lsgan", "distance": "l1",
        "identity": 0.5, "conditional_critics": False, "critics_first": False, "pool_size": 50,
    },
    # Adversarial auto-encoder: reconstruction of x̂ + a critic matching q(z̃) to the prior (the batch's z).
    "aae": {
        **_OFF, "x_hat_dist": 1.0, "z_tilde_adv": 1.0, "gan_mode": "vanilla", "distance": "mse",
        "identity": 0.0, "conditional_critics": False, "critics_first": False, "pool_size": 0,
    },
    # GAN: the decoder generates x̃ = D(z) from the batch's z, judged by one critic; the encoder is unused.
    "gan": {
        **_OFF, "x_tilde_adv": 1.0, "gan_mode": "vanilla",
        "identity": 0.0, "conditional_critics": False, "critics_first": False, "pool_size": 0,
    },
}  # fmt: skip


@dataclass
class TurboConfig(ModelConfig):
    # PRESETS replace the fields left at their defaults; a field given another value keeps it (pix2pix with λ 10).
    preset: Literal["none", "pix2pix", "cyclegan", "aae", "gan"] = "none"
    # networks: images use `generator` and PatchGAN critics; vectors use MLPs
    generator: Literal["resnet", "unet"] = "resnet"
    hidden_channels: int = 64
    n_blocks: int = 9  # ResNet generator
    norm: Literal["batch", "instance", "none"] = "instance"
    dropout: float = 0.0
    hidden_units: int = 256  # MLP widths hidden_units, /2, /4, ... (hidden_layers of them); the decoder mirrors
    hidden_layers: int = 3
    # objective
    distance: Literal["l1", "mse"] = "l1"
    gan_mode: Literal["vanilla", "lsgan", "wgan-gp"] = "lsgan"
    z_tilde_dist: float = 10.0  # d(z, E(x)), paired
    z_tilde_adv: float = 1.0
    x_hat_dist: float = 10.0  # d(x, D(E(x))), cycle
    x_hat_adv: float = 1.0
    x_tilde_dist: float = 10.0  # d(x, D(z)), paired
    x_tilde_adv: float = 1.0
    z_hat_dist: float = 10.0  # d(z, E(D(z))), cycle
    z_hat_adv: float = 1.0
    identity: float = 0.5  # d(E(z), z) weighs identity·z_hat_dist, d(D(x), x) identity·x_hat_dist (CycleGAN's)
    z_tilde_gp: float = 10.0  # gradient-penalty weights, wgan-gp only
    x_hat_gp: float = 10.0
    x_tilde_gp: float = 10.0
    z_hat_gp: float = 10.0
    conditional_critics: bool = False  # the z̃ and x̃ critics also see the input (pix2pix's critics)
    critics_first: bool = False  # update the critics before the generators (pix2pix, WGAN-GP) or after (CycleGAN)
    pool_size: int = 50  # past fakes shown to each critic; 0 for none
    input_noise: float = 0.0  # σ of Gaussian noise added to every E and D input while training
    # optimisation
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    weight_decay: float = 0.0
    critic_lr: float = 2e-4
    critic_betas: tuple[float, float] = (0.5, 0.999)
    critic_weight_decay: float = 0.0
    decay_from: float = 0.5  # constant learning rate for this fraction of the steps, then linearly to 0

    def __post_init__(self) -> None:
        """Apply the preset to the fields still at their defaults; fields given other values keep them."""
        if self.preset == "none":
            return
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        for key, value in PRESETS[self.preset].items():
            if getattr(self, key) == defaults[key]:
                setattr(self, key, value)


@models.register("turbo")
class Turbo(Model):
    name = "turbo"
    description = "TURBO: two-way auto-encoder, paired + reconstruction + critic terms on both paths"
    Config = TurboConfig
    capabilities = {"translate", "translate_back"}

    def __init__(self, config: TurboConfig, data: DataSpec):
        super().__init__(config, data)
        if config.gan_mode == "wgan-gp" and config.norm == "batch" and data.kind == "image":
            raise AebenchError(f"{self.name}: wgan-gp critics cannot use batch norm (choose norm=instance or none)")
        self.lambdas = {f"{t}_{p}": getattr(config, f"{t}_{p}") for t in TERMS for p in ("dist", "adv", "gp")}
        critic_terms = [t for t in TERMS if self.lambdas[f"{t}_adv"] > 0]
        if not self._on(*TERMS):
            raise AebenchError(f"{self.name}: every term weight is 0; nothing to train")
        if data.kind == "image":
            c_x, c_z, h, w = paired_images(data, self.name)
            size = {"x": c_x, "z": c_z}
            self.encoder, self.decoder = self._image_generator(c_x, c_z, h, w), self._image_generator(c_z, c_x, h, w)
            make_critic = lambda n: PatchCritic(n, config.hidden_channels, config.norm, h, w)  # noqa: E731
        elif data.kind == "vector":
            if len(data.shape) != 1 or data.pair_shape is None or len(data.pair_shape) != 1:
                raise AebenchError(f"{self.name} needs paired vectors (D,), got {data.shape} and {data.pair_shape}")
            size = {"x": data.shape[0], "z": data.pair_shape[0]}
            widths = [max(config.hidden_units // 2**i, 1) for i in range(config.hidden_layers)]
            self.encoder, self.decoder = MLP(size["x"], widths, size["z"]), MLP(size["z"], widths[::-1], size["x"])
            make_critic = lambda n: MLP(n, widths, 1)  # noqa: E731
        else:
            raise AebenchError(f"{self.name} handles paired images or vectors, not {data.kind} data")
        if config.identity > 0 and (config.x_hat_dist > 0 or config.z_hat_dist > 0) and size["x"] != size["z"]:
            raise AebenchError(f"{self.name}: the identity term needs x and z of one size (set identity=0)")
        self.critics = nn.ModuleDict(
            {t: make_critic(size[TARGET[t]] + self._condition_size(t, size)) for t in critic_terms}
        )
        self.pools = nn.ModuleDict({t: ImagePool(config.pool_size) for t in critic_terms if config.pool_size > 0})

    def _image_generator(self, c_in: int, c_out: int, h: int, w: int) -> nn.Module:
        c = self.config
        if c.generator == "unet":
            return UNetGenerator(c_in, c_out, h, w, c.hidden_channels, c.norm, c.dropout, self.data.value_range)
        return ResnetGenerator(
            c_in, c_out, h, w, c.hidden_channels, c.n_blocks, c.norm, c.dropout, self.data.value_range
        )

    def _condition_size(self, term: str, size: dict[str, int]) -> int:
        return size[CONDITION[term]] if self.config.conditional_critics and term in CONDITION else 0

    # --- training ---------------------------------------------------------------------------------------------------
    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        generators = [*self.encoder.parameters(), *self.decoder.parameters()]
        optimizers = {"generator": torch.optim.Adam(generators, c.lr, c.betas, weight_decay=c.weight_decay)}
        if len(self.critics):
            optimizers["critic"] = torch.optim.Adam(
                self.critics.parameters(), c.critic_lr, c.critic_betas, weight_decay=c.critic_weight_decay
            )
        return optimizers

    def configure_schedulers(self, optimizers, total_steps):
        return linear_decay(optimizers, total_steps, self.config.decay_from)

    def training_step(self, batch: Batch, optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, float]:
        data = {"x": batch["x"], "z": batch["z"]}
        paths = self._paths(data)
        logs: dict[str, Tensor] = {}
        if self.config.critics_first:
            logs |= self._critic_step(data, paths, optimizers)
            logs |= self._generator_step(data, paths, optimizers["generator"])
        else:
            logs |= self._generator_step(data, paths, optimizers["generator"])
            logs |= self._critic_step(data, paths, optimizers)
        return self.logged(logs)

    def _on(self, *terms: str) -> bool:
        return any(self.lambdas[f"{t}_dist"] > 0 or self.lambdas[f"{t}_adv"] > 0 for t in terms)

    def _encode(self, x: Tensor) -> Tensor:
        noise = self.config.input_noise if self.training else 0.0
        return self.encoder(x + noise * torch.randn_like(x) if noise > 0 else x)

    def _decode(self, z: Tensor) -> Tensor:
        noise = self.config.input_noise if self.training else 0.0
        return self.decoder(z + noise * torch.randn_like(z) if noise > 0 else z)

    def _paths(self, data: dict[str, Tensor]) -> dict[str, Tensor]:
        """The outputs the active terms need: z̃ = E(x), x̂ = D(z̃), x̃ = D(z), ẑ = E(x̃)."""
        paths = {}
        if self._on("z_tilde", "x_hat"):
            paths["z_tilde"] = self._encode(data["x"])
        if self._on("x_hat"):
            paths["x_hat"] = self._decode(paths["z_tilde"])
        if self._on("x_tilde", "z_hat"):
            paths["x_tilde"] = self._decode(data["z"])
        if self._on("z_hat"):
            paths["z_hat"] = self._encode(paths["x_tilde"])
        return paths

    def _critic_input(self, term: str, sample: Tensor, data: dict[str, Tensor]) -> Tensor:
        if self.config.conditional_critics and term in CONDITION:
            return torch.cat([data[CONDITION[term]], sample], 1)
        return sample

    def _critic_step(self, data: dict[str, Tensor], paths: dict[str, Tensor], optimizers) -> dict[str, Tensor]:
        """Each critic: its domain's real data against the term's (pooled) outputs."""
        if not len(self.critics):
            return {}
        mode, logs, total = self.config.gan_mode, {}, 0.0
        for term, critic in self.critics.items():
            real = self._critic_input(term, data[TARGET[term]], data)
            fake = self._critic_input(term, paths[term].detach(), data)
            if term in self.pools:
                fake = self.pools[term](fake)
            loss = gan_loss(critic(real), True, mode) + gan_loss(critic(fake), False, mode)
            if mode == "wgan-gp":
                alpha = torch.rand(len(real), *[1] * (real.dim() - 1), device=real.device)
                with torch.autocast(real.device.type, enabled=False):  # bf16 norms are too coarse for a weight of 1000
                    logs[f"gp_{term}"] = gradient_penalty(critic, real.float(), fake.float(), alpha)
                loss = loss + self.lambdas[f"{term}_gp"] * logs[f"gp_{term}"]
            else:
                loss = 0.5 * loss  # as in pix2pix and CycleGAN
            logs[f"critic_{term}"] = loss
            total = total + loss
        optimizers["critic"].zero_grad(set_to_none=True)
        self.backward(total)
        optimizers["critic"].step()
        return logs

    def _generator_step(self, data: dict[str, Tensor], paths: dict[str, Tensor], optimizer) -> dict[str, Tensor]:
        self.critics.requires_grad_(False)
        c, logs, total = self.config, {}, 0.0
        if c.identity * c.z_hat_dist > 0:
            logs["identity_z"] = distance(self._encode(data["z"]), data["z"], c.distance)
            total = total + c.identity * c.z_hat_dist * logs["identity_z"]
        if c.identity * c.x_hat_dist > 0:
            logs["identity_x"] = distance(self._decode(data["x"]), data["x"], c.distance)
            total = total + c.identity * c.x_hat_dist * logs["identity_x"]
        for term, critic in self.critics.items():
            logs[f"{term}_adv"] = gan_loss(critic(self._critic_input(term, paths[term], data)), True, c.gan_mode)
            total = total + self.lambdas[f"{term}_adv"] * logs[f"{term}_adv"]
        for term in TERMS:
            if self.lambdas[f"{term}_dist"] > 0:
                logs[f"{term}_dist"] = distance(paths[term], data[TARGET[term]], c.distance)
                total = total + self.lambdas[f"{term}_dist"] * logs[f"{term}_dist"]
        optimizer.zero_grad(set_to_none=True)
        self.backward(total)
        optimizer.step()
        self.critics.requires_grad_(True)
        logs["generator"] = total
        return logs

    # --- capabilities -----------------------------------------------------------------------------------------------
    def translate(self, x: Tensor) -> Tensor:
        return self.encoder(x)  # z̃ = E(x)

    def translate_back(self, z: Tensor) -> Tensor:
        return self.decoder(z)  # x̃ = D(z)
