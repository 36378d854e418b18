"""The degradation ladder of cdp-twin (see aebench/ladder.py).

The pseudo-model answers each template t with its real print and each print x with its true template, corrupted.
On the simulated channel the print is a second, independent print of the template, so that strength 0 is the
reference row "channel noise floor (second print)"; with --data-dir it is the print x itself. The template
estimate at strength 0 is the template itself (Hamming 0).
"""

from __future__ import annotations

from aebench.ladder import BLIND, SEES, Ladder, Paired, blur, contrast, expect, pixel_noise, shift


def pairs(task, data, budget) -> dict[str, Paired]:
    n = min(budget.eval_samples, len(data.test["x"]))
    x, t = data.test["x"][:n], data.test["z"][:n]
    prints = task.reprint(n, data) if data.source.startswith("embedded") else x
    return {"translate_back": Paired(t, prints, "x"), "translate": Paired(x, t, "z")}


LADDER = Ladder(
    corruptions=(blur(), pixel_noise(), shift(), contrast()),
    outputs=pairs,
    floor="a second print of each template as its twin (simulated channel; the print itself with --data-dir), "
    "the true template as each print's estimate: the reference row 'channel noise floor (second print)'",
    expectations=(
        *expect(SEES, "blur", "fid_twin", "fid_template", "mse", "ssim"),
        *expect(SEES, "noise", "fid_twin", "fid_template", "mse", "ssim"),
        *expect(SEES, "shift", "hamming", "mse", "ssim"),
        *expect(BLIND, "noise", "hamming", why="symbol means average the noise away before Otsu"),
        *expect(SEES, "contrast", "fid_twin", "mse"),
        *expect(BLIND, "contrast", "hamming", why="Otsu binarises each estimate at its own threshold"),
    ),
)
