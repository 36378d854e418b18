"""The degradation ladder of radio-denoising (see aebench/ladder.py).

The pseudo-model denoises each noisy test trace into its true signal, corrupted: strength 0 is a perfect denoiser
(accuracy 100 %, MSE 0). Residual noise adds back a fraction s of the trace's own noise: at s = 1 it is the
reference row "no denoising (noisy trace)".
"""

from __future__ import annotations

import torch
from torch import Tensor

from aebench.ladder import BLIND, NON_MONOTONE, SEES, Context, Corruption, Ladder, Paired, expect


def residual_noise(z: Tensor, s: float, generator: torch.Generator, context: Context) -> Tensor:
    return z + s * (context.inputs - z)


def delay(z: Tensor, s: float, generator: torch.Generator, context: Context) -> Tensor:
    return torch.roll(z, int(s), dims=-1)


def scale(z: Tensor, s: float, generator: torch.Generator, context: Context) -> Tensor:
    return (1 - s) * z


ACCURACIES = ("accuracy", "accuracy_galactic", "accuracy_uniform", "accuracy_cosine")
AMPLITUDES = tuple(f"amplitude_{name}" for name in ACCURACIES)
LADDER = Ladder(
    corruptions=(
        Corruption(
            "residual-noise",
            "true signal + s × the trace's own noise (s = 1: no denoising)",
            (0.1, 0.25, 0.5, 1.0),
            residual_noise,
            unit="s",
        ),
        Corruption(
            "time-shift", "true signal delayed by k samples (5.6 ns each)", (2, 5, 11, 30), delay, unit="k (samples)"
        ),
        Corruption("amplitude", "true signal × (1 − s)", (0.01, 0.05, 0.1, 0.3), scale, unit="s"),
    ),  # fmt: skip
    outputs=lambda task, data, budget: {"translate": Paired(data.test["x"], data.test["z"])},
    floor="the true signal of each test trace: a perfect denoiser",
    expectations=(
        *expect(SEES, "residual-noise", "accuracy", *AMPLITUDES, "mse", "spectral_error"),
        *expect(SEES, "time-shift", "accuracy", "amplitude_accuracy"),
        *expect(NON_MONOTONE, "time-shift", "mse", why="the pulse rings: 5 samples late overlap it better than 2"),
        *expect(BLIND, "time-shift", "spectral_error", why="an amplitude spectrum does not change with a delay"),
        *expect(SEES, "amplitude", "amplitude_accuracy", "mse", "spectral_error"),
        *expect(BLIND, "amplitude", *ACCURACIES, why="the notes' rule looks at where the peak is, not its height"),
    ),
)
