"""The degradation ladder of hubble2webb (see aebench/ladder.py).

The pseudo-model translates each sliding window of the Hubble test field into the Webb window at the same place,
corrupted; the task stitches and scores the windows as it does a model's. On the embedded sky the Webb window is
taken from the second, independent Webb exposure, so that strength 0 is the reference row "second Webb exposure
(noise floor)" (with finite PSNR); with --data-dir it is the Webb field itself (strength 0: MSE 0).
"""

from __future__ import annotations

import torch

from aebench.ladder import SEES, Ladder, Paired, blur, contrast, expect, pixel_noise, shift


def windows(task, data, budget) -> dict[str, Paired]:
    from . import stride, window_starts  # the windows `evaluate` cuts

    crop = data.spec.shape[-1]
    target = data.test.get("z_repeat", data.test["z"])
    sources, targets = [], []
    for field, webb in zip(data.test["x"], target):
        _, height, width = field.shape
        for y in window_starts(height, crop, stride(crop)):
            for x in window_starts(width, crop, stride(crop)):
                sources.append(field[:, y : y + crop, x : x + crop])
                targets.append(webb[:, y : y + crop, x : x + crop])
    return {"translate": Paired(torch.stack(sources), torch.stack(targets))}


LADDER = Ladder(
    corruptions=(blur(), pixel_noise(), shift(), contrast()),
    outputs=windows,
    floor="the second Webb exposure of the same sky (embedded data; the Webb field itself with --data-dir), "
    "window by window: the reference row 'second Webb exposure (noise floor)'",
    expectations=(
        *expect(SEES, "blur", "mse", "ssim", "psnr", "lpips", "fid"),
        *expect(SEES, "noise", "mse", "ssim", "psnr", "lpips", "fid"),
        *expect(SEES, "shift", "mse", "ssim", "psnr", "lpips"),
        *expect(SEES, "contrast", "mse", "psnr", "fid"),
    ),
)
