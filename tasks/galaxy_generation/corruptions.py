"""The degradation ladder of galaxy-generation (see aebench/ladder.py).

The pseudo-model samples real training galaxies, as the reference row "Real (training vs test galaxies)" does, so
strength 0 is that row; it has no `sample_class`, so the conditional-accuracy columns are not on the ladder.
"""

from __future__ import annotations

import torch
from torch import Tensor

from aebench.ladder import (
    BLIND,
    SEES,
    WRONG_WAY,
    Context,
    Corruption,
    Draw,
    Ladder,
    blur,
    drop_classes,
    expect,
    pixel_noise,
    replayed_copies,
)


def redden(x: Tensor, s: float, generator: torch.Generator, context: Context) -> Tensor:
    """A colour cast: in [0, 1] units the red channel gains a factor 1 + s and the blue one loses a factor 1 − s."""
    unit = (x + 1) / 2
    gains = torch.tensor([1 + s, 1.0, 1 - s], dtype=x.dtype).view(1, 3, 1, 1)
    return (unit * gains).clamp(0, 1) * 2 - 1


COLOUR = Corruption("colour", "colour cast: red × (1 + s), blue × (1 − s)", (0.05, 0.1, 0.2, 0.4), redden, unit="s")

FEATURES = ("fid", "kid", "fid_ae", "kid_ae")
LADDER = Ladder(
    corruptions=(blur(), pixel_noise(), drop_classes(dropped=(1, 2)), COLOUR),
    outputs=lambda task, data, budget: {"sample": Draw("x", "train")},
    floor="real training galaxies as samples: the reference row 'Real (training vs test galaxies)'",
    expectations=(
        *expect(SEES, "blur", *FEATURES, "sharpness", "recall_ae"),
        *expect(SEES, "noise", "fid_ae", "kid_ae"),
        *expect(WRONG_WAY, "noise", "sharpness", why="the Laplace response rises with noise: noise reads as sharp"),
        *expect(SEES, "drop-classes", "fid", "kid", "class_coverage", "share_elliptical", "share_spiral"),
        *expect(BLIND, "drop-classes", "share_barred_spiral", why="the class kept is over-represented, capped at 1"),
        *expect(SEES, "colour", "fid_ae", "kid_ae"),
        *replayed_copies("blur", "noise"),
    ),
)
