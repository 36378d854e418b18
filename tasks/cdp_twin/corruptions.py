"""The degradation ladder of cdp-twin (see aebench/ladder.py).

The pseudo-model answers each template t with its real print and each print x with its true template, corrupted.
On the simulated channel the print is a second, independent print of the template, so that strength 0 is the
reference row "channel noise floor (second print)"; with --data-dir it is the print x itself. The template
estimate at strength 0 is the template itself (Hamming 0).

`average` (simulated channel only) replaces each twin by the mean of k independent prints of its template: a move
toward the conditional mean E[x|t], the best twin in MSE and a print without its noise.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from aebench.errors import AebenchError
from aebench.ladder import (
    BLIND,
    NON_MONOTONE,
    SEES,
    WRONG_WAY,
    Context,
    Corruption,
    Ladder,
    Paired,
    blur,
    contrast,
    expect,
    pixel_noise,
    shift,
)
from aebench.task import TaskData

from .channel import ChannelConfig
from .data import channel_key, test_prints

_PRINTS: dict[tuple[str, int, int], Tensor] = {}  # (channel hash, n, print index) → prints of the first n templates


def pairs(task, data, budget) -> dict[str, Paired]:
    n = min(budget.eval_samples, len(data.test["x"]))
    x, t = data.test["x"][:n], data.test["z"][:n]
    reprints = task.reprint(n, data) if data.source.startswith("embedded") else x
    return {"translate_back": Paired(t, reprints, "x"), "translate": Paired(x, t, "z")}


def channel_of(data: TaskData) -> ChannelConfig:
    """The channel config the simulated data were made with (checked against their hash)."""
    info = data.info.get("channel")
    if not data.source.startswith("embedded") or info is None:
        raise AebenchError("cdp-twin ladder: 'average' needs the simulated channel (several prints of a template); "
                           "with --data-dir, pass --corruptions blur,noise,shift,contrast")  # fmt: skip
    names = {f.name for f in dataclasses.fields(ChannelConfig)}
    config = ChannelConfig(**{k: tuple(v) if k == "densities" else v for k, v in info.items() if k in names})
    if channel_key(config)[:12] != info["hash"]:
        raise AebenchError("cdp-twin ladder: the data's channel config does not reproduce their hash")
    return config


def prints(data: TaskData, n: int, print_index: int) -> Tensor:
    """Print `print_index` (1: the second print, the floor's) of the first n test templates: (n, 1, H, W)."""
    config = channel_of(data)
    key = (channel_key(config), n, print_index)
    if key not in _PRINTS:  # each strength of `average` reuses the prints of the strengths below it
        _PRINTS[key] = test_prints(config, n, print_index)
    return _PRINTS[key]


def average(strengths: tuple[float, ...] = (2, 4, 8)) -> Corruption:
    """Each twin replaced by the mean of k prints of its template (prints 1 … k; print 1 is the floor's); the
    template estimates are left as they are."""

    def apply(x: Tensor, s: float, g: torch.Generator, context: Context) -> Tensor:
        if context.field != "x":
            return x
        n = int(context.rows.max()) + 1  # the pair's inputs are the first test templates, in order (`pairs`)
        mean = torch.stack([prints(context.data, n, i) for i in range(1, int(s) + 1)]).mean(dim=0)
        return mean[context.rows].to(x.dtype)

    return Corruption("average", "the mean of k independent prints of each template (toward E[x|t])", strengths,
                      apply, unit="k prints")  # fmt: skip


WHY_MEAN = "the mean of several prints is nearer any one print than another print is (it predicts E[x|t])"
WHY_DENOISED = "it removes print noise: the twin moves toward E[x|t], nearer any one print (texture_w1 sees it)"
WHY_LAYOUT = "cdp-ae (an MSE auto-encoder of prints) encodes the dot layout, hardly the print's noise or sharpness"
LADDER = Ladder(
    corruptions=(blur(), pixel_noise(), shift(), contrast(), average()),
    outputs=pairs,
    floor="a second print of each template as its twin (simulated channel; the print itself with --data-dir), "
    "the true template as each print's estimate: the reference row 'channel noise floor (second print)'",
    expectations=(
        *expect(SEES, "blur", "fid_template", "texture_w1"),
        *expect(WRONG_WAY, "blur", "mse", why=WHY_DENOISED),
        *expect(NON_MONOTONE, "blur", "fid_twin", why=WHY_LAYOUT),
        *expect(NON_MONOTONE, "blur", "ssim", why="a slight blur removes print noise (better), a strong one edges"),
        *expect(SEES, "noise", "fid_template", "mse", "ssim", "texture_w1"),
        *expect(WRONG_WAY, "noise", "fid_twin", why=WHY_LAYOUT),
        *expect(SEES, "shift", "hamming", "mse"),
        *expect(NON_MONOTONE, "shift", "ssim", why="SSIM of one noisy print against another is near 0 from 4 px on"),
        *expect(BLIND, "noise", "hamming", why="symbol means average the noise away before Otsu"),
        *expect(SEES, "contrast", "texture_w1"),
        *expect(WRONG_WAY, "contrast", "mse", why=WHY_DENOISED),
        *expect(NON_MONOTONE, "contrast", "fid_twin", why=WHY_LAYOUT),
        *expect(BLIND, "contrast", "hamming", why="Otsu binarises each estimate at its own threshold"),
        *expect(SEES, "average", "texture_w1"),
        *expect(WRONG_WAY, "average", "mse", "ssim", why=WHY_MEAN),
        *expect(BLIND, "average", "hamming", "fid_template", why="the template estimates are not changed"),
    ),
)
