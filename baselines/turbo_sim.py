"""Turbo-Sim (Quétant et al., NeurIPS ML4PS 2021): TURBO with MLPs and four WGAN-GP critics, for event vectors.

Encoder 24-256-128-64-24 (detector x → parton z, the unfolding), mirrored decoder (z → x, the simulation), ReLU;
Gaussian noise 0.05·N(0, 1) on every E and D input. Critics 24-256-128-64-1 with WGAN-GP, updated once per step
before the generators (n_critic = 1). Weights, as published (run.py's defaults):

    term  | distance (MSE) | critic | gradient penalty
    z̃     | 10 (paired)    | 1      | 1000
    x̂     | 10             | 1      | 1000
    x̃     | 0              | 10     | 10
    ẑ     | 100            | 0      | –

Adam 1e-4, betas (0.9, 0.7), weight decay 1e-3; critics Adam 1e-4, betas (0.9, 0.999), weight decay 1e-4; constant
learning rate.

Two objectives (`objective`), because the authors' code does not train what the paper writes:

- `published-code` (default; what produced the paper's table), from quetant/turbo-sim-supplementary:
  - pairs are decoupled: `PairedDataset(decouple=True)` permutes x apart from z, so a batch's x and z rows are
    different events (here: z is permuted within the runner's batch, `decouple_pairs`);
  - `utils/train.py: _compute_loss` returns `loss + loss_critics`, where `loss` is the loop variable of the last
    supervised term, 100·MSE(z, ẑ); the paired z̃ and the x̂ distances are computed and logged but never trained.
    So the generators minimise 100·MSE(z, ẑ) − C_z̃(z̃) − C_x̂(x̂) − 10·C_x̃(x̃);
  - `models/turbo.py: _add_noise` adds the noise in place (`input += 0.05*eps`), so besides the inputs it also
    noises the tensors that come back from the first half of each path: the returned z̃ = E(x + n₁) + n₂ and
    x̃ = D(z + n₃) + n₄, and the critics' real samples are the noised x + n₁ and z + n₃. The MSE compares ẑ with
    z + n₃. This holds at test time too (`get_model_outputs` calls the same forward; `eval()` changes nothing).
- `paper-equations`: the loss as the paper writes it, every term with its weight, on true pairs, with the noise on
  the inputs while training only (aebench's TURBO training step).

`test_noise` (default on) keeps the training noise in `translate` and `translate_back` as the authors' evaluation
does; the noise is drawn from torch's global RNG (the runner seeds it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from aebench.baselines.turbo import Turbo, TurboConfig
from aebench.errors import AebenchError
from aebench.model import Batch, DataSpec
from aebench.registry import models

OBJECTIVES = ("published-code", "paper-equations")


@dataclass
class TurboSimConfig(TurboConfig):
    objective: Literal["published-code", "paper-equations"] = "published-code"
    decouple_pairs: bool = True  # published-code: each batch's z rows are permuted apart from its x rows
    test_noise: bool = True  # translate / translate_back keep the training noise, as the authors' evaluation
    hidden_units: int = 256  # MLP widths 256, 128, 64
    hidden_layers: int = 3
    distance: Literal["l1", "mse"] = "mse"
    gan_mode: Literal["vanilla", "lsgan", "wgan-gp"] = "wgan-gp"
    z_tilde_dist: float = 10.0
    z_tilde_adv: float = 1.0
    z_tilde_gp: float = 1000.0
    x_hat_dist: float = 10.0
    x_hat_adv: float = 1.0
    x_hat_gp: float = 1000.0
    x_tilde_dist: float = 0.0
    x_tilde_adv: float = 10.0
    x_tilde_gp: float = 10.0
    z_hat_dist: float = 100.0
    z_hat_adv: float = 0.0
    identity: float = 0.0
    critics_first: bool = True
    pool_size: int = 0
    input_noise: float = 0.05
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.7)
    weight_decay: float = 1e-3
    critic_lr: float = 1e-4
    critic_betas: tuple[float, float] = (0.9, 0.999)
    critic_weight_decay: float = 1e-4
    decay_from: float = 1.0  # no decay


@models.register("turbo-sim")
class TurboSim(Turbo):
    name = "turbo-sim"
    description = "Turbo-Sim: TURBO with MLPs 24-256-128-64-24, four WGAN-GP critics, the published HEP objective"
    Config = TurboSimConfig

    def __init__(self, config: TurboSimConfig, data: DataSpec):
        if data.kind != "vector":
            raise AebenchError(f"turbo-sim is the MLP TURBO for vectors, got {data.kind} data (use turbo for images)")
        if config.preset != "none":
            raise AebenchError("turbo-sim takes no preset; use the turbo model for presets")
        if config.objective not in OBJECTIVES:
            raise AebenchError(f"turbo-sim: unknown objective {config.objective!r} (choose {', '.join(OBJECTIVES)})")
        if config.objective == "published-code" and (config.gan_mode != "wgan-gp" or config.pool_size > 0 or
                                                     config.conditional_critics or config.identity > 0):  # fmt: skip
            raise AebenchError(
                "turbo-sim: objective=published-code is the authors' WGAN-GP setup (gan_mode=wgan-gp, no pool, "
                "unconditional critics, identity 0); use objective=paper-equations"
            )
        super().__init__(config, data)

    def _noise(self, t: Tensor) -> Tensor:
        return t + self.config.input_noise * torch.randn_like(t) if self.config.input_noise > 0 else t

    def training_step(self, batch: Batch, optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, float]:
        if self.config.objective == "paper-equations":
            return super().training_step(batch, optimizers)
        x, z = batch["x"], batch["z"]  # (B, 24) each
        if self.config.decouple_pairs:
            z = z[torch.randperm(len(z), device=z.device)]
        # The published forward passes, noise included where their in-place `_add_noise` leaves it.
        x_in, z_in = self._noise(x), self._noise(z)
        z_tilde = self._noise(self.encoder(x_in))  # E(x + n₁) + n₂
        paths = {"z_tilde": z_tilde, "x_hat": self.decoder(z_tilde)}
        paths["x_tilde"] = self._noise(self.decoder(z_in))  # D(z + n₃) + n₄
        paths["z_hat"] = self.encoder(paths["x_tilde"])
        data = {"x": x_in, "z": z_in}  # the critics' real samples are the noised inputs
        logs = self._critic_step(data, paths, optimizers)
        self.critics.requires_grad_(False)
        logs["z_hat_dist"] = F.mse_loss(z_in, paths["z_hat"])
        total = self.config.z_hat_dist * logs["z_hat_dist"]
        for term, critic in self.critics.items():
            logs[f"{term}_adv"] = -critic(paths[term]).mean()
            total = total + self.lambdas[f"{term}_adv"] * logs[f"{term}_adv"]
        optimizers["generator"].zero_grad(set_to_none=True)
        self.backward(total)  # outside autocast
        optimizers["generator"].step()
        self.critics.requires_grad_(True)
        logs["generator"] = total
        return self.logged(logs)

    def translate(self, x: Tensor) -> Tensor:
        if not self.config.test_noise:
            return self.encoder(x)
        z = self.encoder(self._noise(x))
        return self._noise(z) if self.config.objective == "published-code" else z

    def translate_back(self, z: Tensor) -> Tensor:
        if not self.config.test_noise:
            return self.decoder(z)
        x = self.decoder(self._noise(z))
        return self._noise(x) if self.config.objective == "published-code" else x
