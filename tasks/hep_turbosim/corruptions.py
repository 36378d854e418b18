"""The degradation ladder of hep-turbosim (see aebench/ladder.py).

The pseudo-model replays independent events: `translate` returns parton-level events z and `translate_back`
detector-level events x of the training split (the same events for both), as the reference row "Truth (independent
sample)" does, so strength 0 is that row. Corruptions act in GeV.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from aebench.ladder import BLIND, SEES, Context, Corruption, Draw, Ladder, TaskData, expect


def _in_gev(change: Callable[[Tensor, float, torch.Generator], Tensor]):
    """A change of events in GeV as a corruption of normalised events of the context's space ("x" or "z")."""

    def apply(x: Tensor, s: float, generator: torch.Generator, context: Context) -> Tensor:
        norm = context.data.info["normalisation"]
        mean = torch.tensor(norm[f"{context.field}_mean"], dtype=torch.float64)
        std = torch.tensor(norm[f"{context.field}_std"], dtype=torch.float64)
        return ((change(x.double() * std + mean, s, generator) - mean) / std).to(x.dtype)

    return apply


def smear(gev: Tensor, s: float, generator: torch.Generator) -> Tensor:
    """Every feature + a Gaussian of s × its own standard deviation (a worse resolution everywhere)."""
    return gev + s * gev.std(dim=0) * torch.randn(gev.shape, generator=generator, dtype=gev.dtype)


def column_shuffle(x: Tensor, s: float, generator: torch.Generator, context: Context) -> Tensor:
    """Among the first s of the events, each feature permuted on its own: marginals exact, correlations gone."""
    n = math.ceil(s * len(x))
    out = x.clone()
    for j in range(x.shape[1]):
        out[:n, j] = x[torch.randperm(n, generator=generator), j]
    return out


def parton_mtt(z_gev: Tensor) -> Tensor:
    """m_tt of parton-level events: the invariant mass of the six partons' summed four-vectors (px, py, pz, E)."""
    total = z_gev.view(len(z_gev), 6, 4).sum(dim=1)
    return (total[:, 3] ** 2 - (total[:, :3] ** 2).sum(dim=1)).clamp_min(0).sqrt()


def below_tail(split: dict[str, Tensor], s: float, data: TaskData) -> Tensor:
    """The events outside the top s of parton-level m_tt."""
    norm = data.info["normalisation"]
    mean, std = (torch.tensor(norm[key], dtype=torch.float64) for key in ("z_mean", "z_std"))
    mtt = parton_mtt(split["z"].double() * std + mean)
    return mtt <= torch.quantile(mtt, 1 - s)


X_Z = tuple(f"{kind}_{space}" for kind in ("kl", "ks", "w2", "chi2", "chi2otus") for space in ("x", "z"))
MARGINALS = (*X_Z, *(f"{kind}_rec" for kind in ("kl", "ks", "w2", "chi2", "chi2otus")))
JOINT = tuple(f"{kind}_{space}" for kind in ("fpd", "kpd", "c2st") for space in ("x", "z"))

LADDER = Ladder(
    corruptions=(
        Corruption(
            "smear",
            "every feature smeared by a Gaussian of s × its standard deviation",
            (0.05, 0.1, 0.2, 0.4),
            _in_gev(smear),
            unit="s",
        ),
        Corruption(
            "energy-scale",
            "every momentum and energy component × (1 + s)",
            (0.01, 0.02, 0.05, 0.1),
            _in_gev(lambda gev, s, g: gev * (1 + s)),
            unit="s",
        ),
        Corruption(
            "shuffle",
            "a fraction s of the events with each feature permuted on its own",
            (0.25, 0.5, 0.75, 1.0),
            column_shuffle,
            unit="s",
        ),
        Corruption(
            "drop-tail",
            "the events with the top s of parton-level m_tt never produced",
            (0.05, 0.1, 0.2, 0.4),
            keep=below_tail,
            unit="s",
        ),
    ),  # fmt: skip
    outputs=lambda task, data, budget: {"translate": Draw("z", "train"), "translate_back": Draw("x", "train")},
    floor="independent events of the training split: the reference row 'Truth (independent sample)'",
    expectations=(
        *expect(SEES, "smear", "kl_x", "kl_z", "ks_x", "ks_z", "w2_x", "w2_z", "kl_rec"),
        *expect(SEES, "energy-scale", "kl_x", "kl_z", "ks_x", "ks_z", "w2_x", "w2_z", "kl_rec"),
        *expect(BLIND, "shuffle", *X_Z, why="sums of 1-D marginals: a column permutation keeps every marginal"),
        *expect(SEES, "shuffle", "kl_rec", why="the masses combine features of one event"),
        *expect(SEES, "shuffle", *JOINT, why="on all of a space's features at once: they see correlations"),
        *expect(SEES, "drop-tail", "kl_rec", "ks_rec", "w2_rec"),
    ),
)
