"""latent-lines: do an auto-encoder's latent interpolations stay on the data manifold? (ACAI paper, section 3.)

A model encodes pairs of test lines, its codes are mixed at 16 evenly spaced weights (the ends included) and
decoded; each decoded interpolant is matched with the closest of 10,000 true lines. Mean Distance is how far it is
from that line (cosine distance), Smoothness how evenly the matched angles step from one end to the other; both
are 0 for the ideal interpolation and lower is better. See README.md and metrics.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from aebench.images import save_png
from aebench.metrics import MeanSquaredError
from aebench.model import DataSpec, Model
from aebench.registry import tasks
from aebench.task import Budget, Evaluation, MetricSpec, Task, TaskData, checked_output

from .claims import CLAIMS
from .data import SPEC, EmbeddedConfig, draw_lines, load_embedded
from .metrics import InterpolationScores, score

STEPS = 16  # the authors' n_images_per_interpolation: α = k / 15, k = 0 … 15
EVAL_BATCH = 512  # images per encode/decode call
# The authors' lines nets (baselines/_acai_nets.py): depth 16 (their first conv width), a 2 × 2 × 16 = 64 latent map;
# for every model with an `arch` (ae, vae, wae, aae, acai); the others keep their own nets.
AUTHORS_NETS = {"hidden": 16, "arch": "acai-paper", "latent_width": 2}
AUTHORS_RECIPE = {**AUTHORS_NETS, "lr": 1e-4}  # their nets and their Adam lr (runs/acai.sh)


@tasks.register("latent-lines")
class LatentLines(Task):
    name = "latent-lines"
    version = "1"
    description = "Interpolate between codes of 32×32 line images: Mean Distance and Smoothness (ACAI paper)"
    requires = frozenset({"encode", "decode"})
    claims = CLAIMS  # the paper's qualitative claims (claims.py), checked by `aebench claims`
    metrics = (
        MetricSpec("mean_distance", False, "Mean Distance", "cosine distance of decoded interpolants to the closest "
                   "true line, mean over 16 steps of each test pair", InterpolationScores, "mean_distance"),
        MetricSpec("smoothness", False, "Smoothness", "largest step of the closest lines' angles along a path over "
                   "its whole change, minus 1/15; mean over paths", InterpolationScores, "smoothness"),
        MetricSpec("mse", False, "Reconstruction MSE", "per-pixel MSE of reconstructed test lines, pixels in [-1, 1]",
                   MeanSquaredError),
    )  # fmt: skip
    model_overrides = {"latent_dim": 64}  # the authors' lines latent: 2 × 2 × 16
    budgets = {
        "smoke": Budget(
            steps=40, batch_size=64, eval_samples=32, checkpoint_every=40,
            note="CPU smoke test: checks that everything runs; the numbers mean nothing",
        ),
        "quick": Budget(
            steps=2000, batch_size=64, eval_samples=256, checkpoint_every=500,
            note="a few minutes a model on one CPU thread; the authors' 256 test pairs; not converged",
            model_overrides={"hidden": 16},
        ),
        "quick-10x": Budget(
            steps=20_000, batch_size=64, eval_samples=256, checkpoint_every=2000,
            note="quick ten times as long (1/13 of the paper's 2²⁴ samples), to measure whether interpolation "
            "improves with length: ae ~5 and acai ~15 minutes on one CPU thread",
            model_overrides={"hidden": 16},
        ),
        "quick-authors-nets": Budget(
            steps=2000, batch_size=64, eval_samples=256, checkpoint_every=500,
            note="quick on the authors' encoder and decoder (arch acai-paper: depth 16, a 2 × 2 × 16 latent map; "
            "ACAI's critic too) for the models that take them: does the architecture move the scores? ae ~5 and "
            "acai ~15 minutes on one CPU thread",
            model_overrides=AUTHORS_NETS,
        ),
        "quick-authors-recipe": Budget(
            steps=2000, batch_size=64, eval_samples=256, checkpoint_every=500,
            note="quick-authors-nets at the authors' learning rate 1e-4 (their Adam lr of every lines run; at "
            "quick's 1e-3 ACAI diverged on their nets): the rows that test the paper's claims on a CPU; not "
            "converged (1/131 of the paper's samples). ae ~5 and acai ~16 minutes a run on one CPU thread",
            model_overrides=AUTHORS_RECIPE,
        ),
        "paper": Budget(
            steps=262_144, batch_size=64, eval_samples=256, checkpoint_every=10_000,
            note="GPU; the authors' lines run (runs/acai.sh, lib/train.py): batch 64, 2^24 samples (total_kimg "
            "2^14), Adam lr 1e-4, their nets (arch acai-paper: depth 16, a 2 × 2 × 16 latent map) for the models "
            "that take them; 256 test pairs. Not run yet (acai ~0.5 s a step on one CPU thread: 1.5 days)",
            model_overrides=AUTHORS_RECIPE,
        ),
    }  # fmt: skip

    def __init__(self, cache_dir: Path, embedded: EmbeddedConfig | None = None):
        super().__init__(cache_dir)
        self.embedded = embedded or EmbeddedConfig()

    def load(self, data_dir: Path | None, budget: Budget | None = None) -> TaskData:
        if data_dir is not None:
            from aebench.errors import AebenchError

            raise AebenchError("latent-lines has no published data files: its lines are generated (drop --data-dir)")
        return load_embedded(self.cache_dir, self.embedded)

    def data_spec(self, budget: Budget | None = None) -> DataSpec:
        return SPEC

    def evaluate(self, model: Model, data: TaskData, budget: Budget, generator: torch.Generator) -> Evaluation:
        first, second = pairs(data, budget)
        paths = interpolate(model, first, second, data)
        metrics = self.build_metrics()
        return score(paths, metrics["mean_distance"], mse=reconstruction_mse(model, data, metrics["mse"]))

    def references(self, data: TaskData, budget: Budget, generator: torch.Generator) -> dict[str, Evaluation]:
        """The ideal interpolation (true lines along the shorter arc) and a pixel crossfade of the two ends."""
        first, second = pairs(data, budget)
        paths = {"exact interpolation (true lines)": exact_paths(data, budget), "pixel crossfade":
                 crossfade_paths(first, second)}  # fmt: skip
        return {
            label: score(path, self.build_metrics("mean_distance")["mean_distance"], why_no_mse="not a model")
            for label, path in paths.items()
        }

    def save_samples(self, model: Model, data: TaskData, path: Path, generator: torch.Generator) -> None:
        """Eight test pairs: each row the model's 16 interpolants, under it the exact interpolation."""
        budget = Budget(steps=0, batch_size=1, eval_samples=8)
        first, second = pairs(data, budget)
        rows = torch.stack([interpolate(model, first, second, data), exact_paths(data, budget)], dim=1)  # (8,2,S,…)
        h, w = data.spec.shape[1:]
        pad = 2
        picture = np.ones((len(rows) * 2 * (h + pad) + pad, STEPS * (w + pad) + pad), np.float32)
        for r, row in enumerate(rows.reshape(-1, STEPS, h, w).numpy()):
            top = pad + r * (h + pad)
            for k, image in enumerate(row):
                picture[top : top + h, pad + k * (w + pad) : pad + k * (w + pad) + w] = image
        save_png(path, picture, vmin=-1.0, vmax=1.0)


def pairs(data: TaskData, budget: Budget) -> tuple[Tensor, Tensor]:
    """The authors' pairs: of the first 2n test lines, line i with line n + i (n = eval_samples, at most half)."""
    n = min(budget.eval_samples, len(data.test["x"]) // 2)
    x = data.test["x"]
    return x[:n], x[n : 2 * n]


def _name(model: Model) -> str:
    return model.name or type(model).__name__


def interpolate(model: Model, first: Tensor, second: Tensor, data: TaskData) -> Tensor:
    """Decoded interpolations (P, S, C, H, W): codes mixed as the authors do, (z₁ (S − 1 − k) + z₂ k) / (S − 1)."""
    with torch.no_grad():
        z1, z2 = encode(model, first), encode(model, second)
        mixed = torch.stack([(z1 * (STEPS - 1 - k) + z2 * k) / (STEPS - 1) for k in range(STEPS)], dim=1)
        decoded = decode(model, mixed.flatten(0, 1), data)
    return decoded.reshape(len(first), STEPS, *data.spec.shape)


def encode(model: Model, x: Tensor) -> Tensor:
    out = []
    for batch in x.split(EVAL_BATCH):
        z = model.encode(batch.to(model.device))
        out.append(checked_output(z, (len(batch), *z.shape[1:]), f"{_name(model)}: encode()"))
    return torch.cat(out)


def decode(model: Model, z: Tensor, data: TaskData) -> Tensor:
    """model.decode in batches, unclamped (the authors score the decoder's raw output)."""
    what = f"{_name(model)}: decode()"
    return torch.cat([checked_output(model.decode(b.to(model.device)), (len(b), *data.spec.shape), what)
                      for b in z.split(EVAL_BATCH)])  # fmt: skip


def reconstruction_mse(model: Model, data: TaskData, mse: MeanSquaredError) -> float:
    """decode(encode(x)) against x over the test split (pixels in [−1, 1]), by `mse` (a fresh object)."""
    with torch.no_grad():
        for x in data.test["x"].split(EVAL_BATCH):
            mse.update(decode(model, encode(model, x), data), x)
    return mse.value()


def shorter_arc(start: Tensor, end: Tensor, steps: int = STEPS) -> Tensor:
    """Angles (P, steps) from `start` to `end` (P,) in equal steps along the shorter way round."""
    turn = torch.remainder(end - start + np.pi, 2 * np.pi) - np.pi  # in [−π, π)
    return torch.remainder(start[:, None] + turn[:, None] * torch.linspace(0, 1, steps, dtype=torch.float64), 2 * np.pi)


def exact_paths(data: TaskData, budget: Budget) -> Tensor:
    """The ideal interpolation of each pair: true lines at angles evenly along the shorter arc (P, S, 1, H, W)."""
    n = min(budget.eval_samples, len(data.test["x"]) // 2)
    angle = data.test["angle"].double()
    angles = shorter_arc(angle[:n], angle[n : 2 * n])
    images = torch.from_numpy(draw_lines(angles.flatten().numpy(), data.spec.shape[-1]))
    return images.reshape(n, STEPS, *data.spec.shape)


def crossfade_paths(first: Tensor, second: Tensor) -> Tensor:
    """(1 − α) x₁ + α x₂ in pixel space at the same 16 weights (P, S, C, H, W): two fading lines, not one turning."""
    alpha = torch.linspace(0, 1, STEPS).reshape(1, STEPS, 1, 1, 1)
    return (1 - alpha) * first[:, None] + alpha * second[:, None]
