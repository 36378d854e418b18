"""Dropout auto-encoder, the "Dropout" column of the ACAI paper's tables (Berthelot et al. 2019; the authors'
dropout.py): the ae whose latent code passes through dropout during training (each number kept with probability
`keep`, the kept ones scaled by 1/keep, as `tf.nn.dropout`), while encoding, decoding and sampling after training use
the whole code. Everything else is the ae's.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor
from torch.nn import functional as F

from aebench.baselines.ae import AE, AEConfig
from aebench.registry import models


@dataclass
class DropoutAEConfig(AEConfig):
    keep: float = 0.5  # probability to keep a latent number (the authors' flag `dropout`)

    def __post_init__(self) -> None:
        if not 0 < self.keep <= 1:
            raise ValueError(f"keep must be in (0, 1], got {self.keep}")


@models.register("ae-dropout")
class DropoutAE(AE):
    name = "ae-dropout"
    description = "the ae with dropout on its latent code during training (ACAI paper's dropout baseline)"
    Config = DropoutAEConfig

    def training_output(self, x: Tensor) -> Tensor:
        code = F.dropout(self.encoder(x), p=1 - self.config.keep, training=True)  # (B, D)
        return self.decoder.logits(code)
