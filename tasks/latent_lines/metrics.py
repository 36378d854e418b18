"""The ACAI paper's interpolation scores (section 3.2), as the authors' code computes them (lib/eval.py).

Mean Distance: for each decoded interpolant, the cosine distance (scipy's `cdist(..., "cosine")`: uncentred,
1 − u·v / (|u| |v|), on the raw pixels in [−1, 1]) to the closest of 10,000 true lines at θ = 2π k / 10,000; the
mean over all interpolants of all paths, endpoints included. Smoothness: the closest lines' angles along a path
are unwrapped (jumps over π removed), and the largest step |θ_{k+1} − θ_k| over the whole change |θ_last − θ_first|,
minus 1 / (steps − 1), is the path's score (0: equal steps); a path whose ends have the same angle (whole change
< 1e-4) has no score, and counts as 0 in the mean over paths (the authors sum the scored paths and divide by all).

That mean lets a collapsed model win: a decoder that draws one image for every code leaves every path unscored
and scores a perfect 0. So Smoothness is not measured (None, with the counts) when fewer than `MIN_SCORED` of the
paths have a score; above that it is the authors' value unchanged. Every working model and the exact interpolation
score all paths (a random pair of true lines at one angle has odds of about 3·10⁻⁵).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from aebench.metrics import ItemMean, Metric
from aebench.task import Evaluation

from .data import grid_angles, grid_lines

CHUNK = 1024  # interpolants per distance matrix (CHUNK × 10,000 float64: 80 MB)
ZERO_CHANGE = 1e-4  # the authors' threshold on the whole change of angle along a path
MIN_SCORED = 0.9  # the share of scored paths below which Smoothness is not measured (module docstring)


def closest_lines(images: Tensor) -> tuple[Tensor, Tensor]:
    """Per image (N, 1, H, W): the cosine distance to the closest true line and that line's angle, float64 (N,).

    An all-zero image (no direction) is at distance 1 from every line (scipy would give NaN)."""
    size = images.shape[-1]
    grid = grid_lines(size)  # (L, H·W) float64
    grid = grid / grid.norm(dim=1, keepdim=True)
    angles = torch.from_numpy(grid_angles())
    distances, found = [], []
    for chunk in images.reshape(len(images), -1).double().split(CHUNK):
        unit = chunk / chunk.norm(dim=1, keepdim=True).clamp_min(1e-300)
        distance = 1.0 - unit @ grid.T  # (chunk, L)
        best, index = distance.min(dim=1)  # the first on ties, as numpy's argmin
        distances.append(best)
        found.append(angles[index])
    return torch.cat(distances), torch.cat(found)


def smoothness(angles: np.ndarray) -> np.ndarray:
    """Per path (P, S) of angles: the authors' smoothness score (P,), NaN where the ends have the same angle."""
    angles = np.unwrap(np.atleast_2d(np.asarray(angles, dtype=np.float64)))
    steps = np.abs(np.diff(angles, axis=-1))
    whole = np.abs(angles[:, :1] - angles[:, -1:])
    with np.errstate(divide="ignore", invalid="ignore"):
        deviation = np.max(steps / whole, axis=-1) - 1.0 / (angles.shape[1] - 1)
    deviation[(whole < ZERO_CHANGE).ravel()] = np.nan
    return deviation


class InterpolationScores(Metric):
    """Mean Distance and Smoothness of interpolation paths (P, S, 1, H, W), as the authors' lib/eval.py computes
    them (see the module docstring). `compute` gives {"mean_distance", "smoothness"}, both lower is better;
    smoothness is NaN when fewer than `MIN_SCORED` of the paths have a score (`value()` gives None then, and
    `ItemMean`s over the interpolants and the paths otherwise)."""

    name = "acai-interpolation"
    higher_is_better = False
    description = "ACAI's mean cosine distance to the closest true line, and smoothness of the decoded angles"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_state("distances", [], dist_reduce_fx="cat")  # (P·S,) of every interpolant
        self.add_state("path_smoothness", [], dist_reduce_fx="cat")  # (P,), NaN where a path has no score

    def update(self, paths: Tensor) -> None:
        n_paths, n_steps = paths.shape[:2]
        distance, angle = closest_lines(paths.reshape(n_paths * n_steps, *paths.shape[2:]))
        self.distances.append(distance)
        self.path_smoothness.append(torch.from_numpy(smoothness(angle.reshape(n_paths, n_steps).numpy())))

    def _values(self) -> dict[str, ItemMean | None]:
        distance, per_path = self.gathered("distances"), self.gathered("path_smoothness").numpy()
        # The authors' mean: unscored paths count as 0 (their sum of scored paths over the number of all paths).
        scored = np.nan_to_num(per_path, nan=0.0)
        measured = (~np.isnan(per_path)).mean() >= MIN_SCORED
        return {
            "mean_distance": ItemMean(float(distance.mean()), distance),
            "smoothness": ItemMean(float(scored.mean()), scored) if measured else None,
        }

    def compute(self) -> dict[str, Tensor]:
        values = self._values()
        return {
            key: torch.tensor(math.nan if v is None else float(v), dtype=torch.float64) for key, v in values.items()
        }

    def value(self) -> dict[str, ItemMean | None]:
        with self.sync_context(should_sync=self._to_sync, should_unsync=self._should_unsync):
            return self._values()


def score(
    paths: Tensor, interpolation: InterpolationScores | None = None, mse: float | None = None, why_no_mse: str = ""
) -> Evaluation:
    """All metrics of interpolation paths (P, S, 1, H, W) by `interpolation` (the task's declared object, fresh; a
    new one when None): mean_distance, smoothness, and the given mse."""
    interpolation = InterpolationScores() if interpolation is None else interpolation
    interpolation.update(paths)
    metrics: dict[str, float | None] = {**interpolation.value(), "mse": mse}
    unavailable = {} if mse is not None else {"mse": why_no_mse}
    per_path = interpolation.path_smoothness[0].numpy()
    unscored = np.isnan(per_path)
    if metrics["smoothness"] is None:
        unavailable["smoothness"] = (
            f"{unscored.sum()} of {len(per_path)} paths decode to one angle at both ends and have no score (more "
            f"than {1 - MIN_SCORED:.0%}): the authors' mean would count them as perfectly smooth"
        )
    details = {"paths": int(paths.shape[0]), "steps": int(paths.shape[1]), "unscored_paths": int(unscored.sum()),
               "smoothness_authors_mean": float(np.nan_to_num(per_path, nan=0.0).mean()),
               "smoothness_scored_mean": float(per_path[~unscored].mean()) if (~unscored).any() else None}  # fmt: skip
    return Evaluation(metrics, unavailable, details=details)
