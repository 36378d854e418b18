"""Turbo-Sim (Quétant et al., NeurIPS ML4PS 2021): TURBO with MLPs and four WGAN-GP critics, for event vectors.

Encoder 24-256-128-64-24 (detector x → parton z, the unfolding), mirrored decoder (z → x, the simulation), ReLU;
Gaussian noise 0.05·N(0, 1) on every E and D input while training. Critics 24-256-128-64-1 with WGAN-GP, updated
once per step before the generators (n_critic = 1, as in the published code). Weights, as published:

    term  | distance (MSE) | critic | gradient penalty
    z̃     | 10 (paired)    | 1      | 1000
    x̂     | 10             | 1      | 1000
    x̃     | 0              | 10     | 10
    ẑ     | 100            | 0      | –

Adam 1e-4, betas (0.9, 0.7), weight decay 1e-3; critics Adam 1e-4, betas (0.9, 0.999), weight decay 1e-4 (the
published code's defaults); constant learning rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from aebench.baselines.turbo import Turbo, TurboConfig
from aebench.errors import AebenchError
from aebench.model import DataSpec
from aebench.registry import models


@dataclass
class TurboSimConfig(TurboConfig):
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
    description = "Turbo-Sim: TURBO with MLPs 24-256-128-64-24, four WGAN-GP critics, the published HEP weights"
    Config = TurboSimConfig

    def __init__(self, config: TurboSimConfig, data: DataSpec):
        if data.kind != "vector":
            raise AebenchError(f"turbo-sim is the MLP TURBO for vectors, got {data.kind} data (use turbo for images)")
        if config.preset != "none":
            raise AebenchError("turbo-sim takes no preset; use the turbo model for presets")
        super().__init__(config, data)
