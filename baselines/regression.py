"""Paired regression: two deterministic MLPs fitted by MSE on the pairs, x → z (`translate`) and z → x
(`translate_back`).

A sanity row for translation tasks. It is the supervised upper bound on per-event accuracy that a model of this
size reaches (each net learns the conditional mean E[z|x] or E[x|z]), and the lower bound on distributional
fidelity for a deterministic map: the conditional mean has no spread of its own, so where the detector smears
(or the unfolding is ambiguous) its outputs come out too narrow. A generative model (OTUS, Turbo-Sim) should beat
it on the distribution metrics; one that does not has learned nothing beyond the mean. The networks are the
ResNet-style MLPs of the otus baseline without the noise input, so the two rows differ only in the objective.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from aebench.baselines.otus import ResidualMLP, vector_sizes
from aebench.errors import AebenchError
from aebench.model import Batch, DataSpec, Model, ModelConfig
from aebench.registry import models


@dataclass
class RegressionConfig(ModelConfig):
    hidden_units: int = 64  # width of both MLPs (the otus baseline's)
    hidden_layers: int = 2
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)


@models.register("regression")
class Regression(Model):
    name = "regression"
    description = "paired sanity baseline: deterministic MLPs x → z and z → x fitted by MSE (conditional means)"
    Config = RegressionConfig
    capabilities = {"translate", "translate_back"}
    supports_amp = False  # tiny MLPs gain nothing from bf16

    def __init__(self, config: RegressionConfig, data: DataSpec):
        super().__init__(config, data)
        d_x, d_z = vector_sizes(data, self.name)
        if config.hidden_units < 1 or config.hidden_layers < 1:
            raise AebenchError("regression: hidden_units and hidden_layers must be ≥ 1")
        self.encoder = ResidualMLP(d_x, d_z, config.hidden_units, config.hidden_layers)  # x → z
        self.decoder = ResidualMLP(d_z, d_x, config.hidden_units, config.hidden_layers)  # z → x

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"model": torch.optim.Adam(self.parameters(), lr=self.config.lr, betas=self.config.betas)}

    def training_step(self, batch: Batch, optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, float]:
        x, z = batch["x"], batch["z"]  # (B, D_x), (B, D_z), paired row by row
        mse_z = F.mse_loss(self.encoder(x), z)  # mean over features and events
        mse_x = F.mse_loss(self.decoder(z), x)
        loss = mse_z + mse_x
        optimizers["model"].zero_grad(set_to_none=True)
        loss.backward()
        optimizers["model"].step()
        values = torch.stack([loss.detach(), mse_z.detach(), mse_x.detach()]).tolist()  # one device sync
        return dict(zip(("loss", "mse_z", "mse_x"), values))

    def translate(self, x: Tensor) -> Tensor:
        return self.encoder(x)  # (B, D_z)

    def translate_back(self, z: Tensor) -> Tensor:
        return self.decoder(z)  # (B, D_x)
