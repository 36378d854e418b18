"""The degradation ladder of mnist-sharpness (see aebench/ladder.py).

The pseudo-model samples real training digits (disjoint from the test digits FID compares with, as the "True"
reference row's FID does) and reconstructs a test digit as itself, each corrupted.
"""

from __future__ import annotations

from aebench.ladder import (
    BLIND,
    SEES,
    WRONG_WAY,
    Draw,
    Ladder,
    Same,
    blur,
    drop_classes,
    expect,
    pixel_noise,
    replayed_copies,
)

LADDER = Ladder(
    corruptions=(blur(), pixel_noise(), drop_classes(dropped=(5, 6, 7, 8, 9))),
    outputs=lambda task, data, budget: {"sample": Draw("x", "train"), "reconstruct": Same("x")},
    floor="real training digits as samples (the 'True' row's FID compares them with the test digits too), "
    "each test digit as its own reconstruction (MSE 0)",
    expectations=(
        *expect(SEES, "blur", "fid", "kid", "mse", "sharpness"),
        *expect(SEES, "noise", "fid", "kid", "mse"),
        *expect(WRONG_WAY, "noise", "sharpness", why="the Laplace response rises with noise: noise reads as sharp"),
        *expect(SEES, "drop-classes", "fid", "kid", "recall"),
        *expect(BLIND, "drop-classes", "mse", why="a reconstruction is not a sample: mode collapse is out of its view"),
        *expect(BLIND, "drop-classes", "precision", why="the digits left are real: fidelity is intact"),
        *replayed_copies("blur", "noise"),
    ),
)
